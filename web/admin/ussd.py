"""USSD sessions in the admin: a filtered list paginated in the database, and each transcript.

A phone number typed in the filter never reaches a URL, a log or the database: the form is
posted, the number normalised and replaced by its keyed hash (the form sessions are stored
under), and the browser is sent to the list filtered on that hash.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, time, timedelta

from flask import abort, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from sqlalchemy import Select, func, select

from flows.screens import End
from models.admin import Role, audit
from models.phone import InvalidPhone, PhoneNumber
from models.referral import Referral
from models.returnee import Returnee
from models.ussd import UssdSession, UssdStep
from web.admin.access import EVERYONE, STAFF, bp, current_user, require
from web.admin.inputs import day as parse_day
from web.admin.paging import Page, page_number
from web.context import sira
from web.db import get_session

NO_OUTCOME = "none"  # sessions that never reached a last screen (abandoned, timed out, ongoing)
HIDDEN_INPUT = "•••"
REFERRALS_SHOWN = 10  # the latest: the returnee's page has them all
HASH = re.compile(r"[0-9a-f]{64}")


def not_for_providers() -> None:
    """A provider's focal point has no business with sessions or messages: the pages do not exist."""
    if current_user().role == Role.PROVIDER:
        abort(404)


def outcomes() -> list[str]:
    """The last screens of the declared journeys: the outcomes a session can record."""
    screens = sira().engine.conversation.screens.values()
    return sorted(s.id for s in screens if isinstance(s, End))


def day_start(day: date) -> datetime:
    return datetime.combine(day, time.min, tzinfo=UTC)


@dataclass(frozen=True)
class Filters:
    start: date | None = None
    end: date | None = None
    outcome: str = ""
    phone_hash: str = ""  # the keyed hash of the number asked for, never the number
    bad_phone: bool = False

    @classmethod
    def from_args(cls, args: dict[str, str], known: list[str]) -> Filters:
        """Unknown values are dropped rather than refused: they only come from edited URLs."""
        outcome = args.get("outcome", "")
        digest = args.get("ph", "")
        return cls(
            start=parse_day(args.get("from", "")),
            end=parse_day(args.get("to", "")),
            outcome=outcome if outcome == NO_OUTCOME or outcome in known else "",
            phone_hash=digest if HASH.fullmatch(digest) else "",
            bad_phone=args.get("bad_phone") == "1",
        )

    def apply(self, query: Select) -> Select:
        if self.start:
            query = query.where(UssdSession.started_at >= day_start(self.start))
        if self.end:  # the whole of the last day
            query = query.where(UssdSession.started_at < day_start(self.end + timedelta(days=1)))
        if self.outcome == NO_OUTCOME:
            query = query.where(UssdSession.outcome.is_(None))
        elif self.outcome:
            query = query.where(UssdSession.outcome == self.outcome)
        if self.phone_hash:
            query = query.where(UssdSession.phone_hash == self.phone_hash)
        return query

    def args(self) -> dict[str, str]:
        values = {"from": self.start.isoformat() if self.start else "", "to": self.end.isoformat() if self.end else "",
                  "outcome": self.outcome, "ph": self.phone_hash, "bad_phone": "1" if self.bad_phone else ""}  # fmt: skip
        return {k: v for k, v in values.items() if v}


def step_count() -> object:
    return (
        select(func.count(UssdStep.id))
        .where(UssdStep.session_id == UssdSession.session_id)
        .correlate(UssdSession)
        .scalar_subquery()
    )


def last_step_at() -> object:
    """When the returnee was last shown a screen: the end of a session that was cut off or left,
    which records no END of its own (the gateway's notice, when it comes, says how it ended)."""
    return (
        select(func.max(UssdStep.at))
        .where(UssdStep.session_id == UssdSession.session_id)
        .correlate(UssdSession)
        .scalar_subquery()
    )


@bp.get("/ussd/sessions")
@require(*EVERYONE)
def ussd_sessions() -> ResponseReturnValue:
    """Newest first; LIMIT/OFFSET in the database, one row more than shown to know of a next page."""
    not_for_providers()
    known = outcomes()
    filters = Filters.from_args(request.args, known)
    number = page_number(request.args)
    newest_first = (UssdSession.started_at.desc(), UssdSession.id.desc())
    # The page's sessions first, and only then their steps: counted for every row skipped by the
    # OFFSET too, the steps made a deep page cost a query per session before it (35 ms at page 100).
    shown = (
        filters.apply(select(UssdSession.id))
        .order_by(*newest_first)
        .limit(Page.SIZE + 1)
        .offset((number - 1) * Page.SIZE)
        .subquery()
    )
    query = select(UssdSession, step_count().label("steps"), last_step_at().label("last")).join(
        shown, UssdSession.id == shown.c.id
    )
    rows = get_session().execute(query.order_by(*newest_first)).all()
    page = Page(number, rows[: Page.SIZE], has_next=len(rows) > Page.SIZE)
    return render_template(
        "admin/ussd_sessions.html", page=page, filters=filters, outcomes=known, no_outcome=NO_OUTCOME
    )


@bp.post("/ussd/sessions")
@require(*EVERYONE)
def ussd_sessions_filter() -> ResponseReturnValue:
    """The filter form: the typed number becomes its hash here, and goes no further."""
    not_for_providers()
    form = request.form
    filters = Filters.from_args({k: form.get(k, "") for k in ("from", "to", "outcome")}, outcomes())
    raw = form.get("phone", "").strip()
    if raw and current_user().role not in STAFF:  # a viewer's masked numbers must not be guessable
        abort(403)
    if raw:
        settings = sira().settings
        try:
            number = PhoneNumber.parse(raw[:32], settings)
        except InvalidPhone:
            filters = replace(filters, bad_phone=True)
        else:
            filters = replace(filters, phone_hash=number.digest)
    elif form.get("keep_phone") == "1":  # the list was already on a number: keep it
        digest = form.get("ph", "")
        filters = replace(filters, phone_hash=digest if HASH.fullmatch(digest) else "")
    return redirect(url_for("admin.ussd_sessions", **filters.args()))


def screen_text(wire: str) -> tuple[str, bool]:
    """The screen as the handset showed it (without the gateway's CON/END) and whether it ended."""
    if wire.startswith(("CON ", "END ")):
        return wire[4:], wire.startswith("END ")
    return wire, False


@bp.get("/ussd/sessions/<path:session_id>")  # a gateway's id may hold "/"
@require(*EVERYONE)
def ussd_session(session_id: str) -> ResponseReturnValue:
    """Every step as the returnee saw it; viewers do not see what was typed (it may be a name)."""
    not_for_providers()
    user, session = current_user(), get_session()
    found = session.scalar(select(UssdSession).where(UssdSession.session_id == session_id[:100]))
    if found is None:
        abort(404)
    hide = user.role == Role.VIEWER
    steps = [
        {
            "seq": s.seq,
            "at": s.at,
            "input": (HIDDEN_INPUT if hide else s.user_input) if s.user_input else "",
            "screen": screen_text(s.screen)[0],
            "end": screen_text(s.screen)[1],
            "server_ms": s.server_ms,
        }
        for s in found.steps
    ]
    audit(session, user.id, "ussd.view", "ussd_session", found.id,
          session_id=found.session_id[:100], steps=len(steps), masked=hide)  # fmt: skip
    session.commit()
    returnee_id = session.scalar(select(Returnee.id).where(Returnee.phone_hash == found.phone_hash))
    codes = list(
        session.scalars(
            select(Referral.code)
            .where(Referral.returnee_id == returnee_id)
            .order_by(Referral.created_at.desc())
            .limit(REFERRALS_SHOWN)
        )
    ) if returnee_id else []  # fmt: skip
    return render_template(
        "admin/ussd_session.html",
        found=found,
        steps=steps,
        masked=hide,
        returnee_id=returnee_id,
        referral_codes=codes,
    )
