"""The SMS log in the admin: messages sent and received, paginated in the database.

Numbers are masked for viewers; bodies are shown to admins and coordinators only. The status
filter has a shortcut for what needs attention (held by the gateway, refused, given up on).
"""

from __future__ import annotations

from dataclasses import dataclass

from flask import abort, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from sqlalchemy import Select, select

from models.admin import Role, audit
from models.messaging import InboundSms, OutboundSms, SmsStatus
from models.phone import masked
from models.referral import Referral
from services.coordination import retry_dead_sms
from web.admin import inputs
from web.admin.access import EVERYONE, STAFF, bp, current_user, require
from web.admin.i18n import _
from web.admin.paging import Page, page_ids, page_number
from web.admin.routes import HEALTH, route_rows
from web.admin.ussd import not_for_providers
from web.context import sira
from web.db import get_or_404, get_session

OUT, IN = "out", "in"
ATTENTION = "attention"
NEEDS_ATTENTION = (SmsStatus.HELD, SmsStatus.FAILED, SmsStatus.DEAD)
STATUS_LABELS = {
    SmsStatus.PENDING: _("pending"), SmsStatus.SENDING: _("sending"), SmsStatus.HELD: _("held"),
    SmsStatus.ACCEPTED: _("accepted by the gateway"), SmsStatus.FAILED: _("refused"), SmsStatus.DEAD: _("given up"),
}  # fmt: skip


@dataclass(frozen=True)
class Filters:
    direction: str = OUT
    status: str = ""  # outgoing only: a status, or "attention" for held, failed and dead

    @classmethod
    def from_args(cls, args: dict[str, str]) -> Filters:
        direction = IN if args.get("direction") == IN else OUT
        status = args.get("status", "")
        known = {s.value for s in SmsStatus} | {ATTENTION}
        return cls(direction=direction, status=status if direction == OUT and status in known else "")

    def apply(self, query: Select) -> Select:
        if self.status == ATTENTION:
            return query.where(OutboundSms.status.in_([s.value for s in NEEDS_ATTENTION]))
        if self.status:
            return query.where(OutboundSms.status == self.status)
        return query

    def args(self) -> dict[str, str]:
        values = {"direction": self.direction if self.direction == IN else "", "status": self.status}
        return {k: v for k, v in values.items() if v}


def number_for(user_role: str, e164: str) -> str:
    return masked(e164) if user_role == Role.VIEWER else e164


@bp.get("/sms")
@require(*EVERYONE)
def sms_log() -> ResponseReturnValue:
    """Newest first; LIMIT/OFFSET (on ids) in the database, one row more than shown to know of a next page."""
    not_for_providers()
    user = current_user()
    filters = Filters.from_args(request.args)
    page_no = page_number(request.args)
    if filters.direction == OUT:
        order = (OutboundSms.created_at.desc(), OutboundSms.id.desc())
        ids = page_ids(filters.apply(select(OutboundSms)), OutboundSms.id, order, page_no)
        query = (
            select(OutboundSms, Referral.code)
            .join(ids, ids.c.id == OutboundSms.id)
            .outerjoin(Referral, Referral.id == OutboundSms.referral_id)
            .order_by(*order)
        )
    else:  # far fewer rows: a plain OFFSET does
        query = (
            select(InboundSms)
            .order_by(InboundSms.received_at.desc(), InboundSms.id.desc())
            .limit(Page.SIZE + 1)
            .offset((page_no - 1) * Page.SIZE)
        )
    rows = get_session().execute(query).all()
    # Outgoing rows are (message, referral code); incoming ones are (message,).
    page = Page(page_no, rows[: Page.SIZE], has_next=len(rows) > Page.SIZE)
    retried = request.args.get("retried", "")[:12]
    if user.role in STAFF:  # they read clear numbers and texts, which may name the returnee
        audit(get_session(), user.id, "sms.view", "sms", filters.direction, page=page_no)
        get_session().commit()
    routes = route_rows(sira().settings, sira().redis, get_session())
    return render_template(
        "admin/sms.html", page=page, routes=routes, route_health=HEALTH, filters=filters, statuses=STATUS_LABELS, attention=ATTENTION,
        show_body=user.role in STAFF, can_retry=user.role in STAFF,
        number=lambda e164: number_for(user.role, e164), retried=retried if inputs.number(retried) is not None else "",
    )  # fmt: skip


@bp.post("/sms/<int:sms_id>/retry")
@require(*STAFF)
def retry_sms(sms_id: int) -> ResponseReturnValue:
    """Give a dead message another round of tries: back to the outbox, queued at once, audited.

    Only a dead message: anything else is on its way, sent, or refused for good by the gateway.
    """
    session = get_session()
    get_or_404(OutboundSms, sms_id)
    if not retry_dead_sms(session, sms_id):
        abort(409)
    audit(session, current_user().id, "sms.retry", "outbound_sms", sms_id)
    sira().outbox.send_after_commit(session, [sms_id])
    return redirect(url_for("admin.sms_log", status=SmsStatus.DEAD.value, retried=sms_id))
