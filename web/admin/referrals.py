"""Referrals in the admin: a filtered list paginated in the database, a timeline, and actions.

Actions go through the lifecycle (services.referrals, services.lifecycle), so their SMS are
written to the outbox in the same transaction and queued after the commit, as web/sms.py does.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from flask import abort, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from sqlalchemy import Select, and_, or_, select
from sqlalchemy.orm import Session

from flows.sms_commands import Command
from models.admin import Role, User, audit
from models.base import as_utc, utcnow
from models.directory import Category, Provider, Region
from models.follow_up import FollowUp
from models.referral import ALLOWED, IllegalTransition, Referral, ReferralEvent, Status
from models.returnee import Returnee
from services import coordination, lifecycle
from web.admin.access import EVERYONE, STAFF, bp, current_user, require
from web.admin.forms import field_errors
from web.admin.i18n import _, translate
from web.admin.inputs import number
from web.admin.labels import FOLLOW_UP_STATUSES, REFERRAL_STATUSES, category_names
from web.admin.masking import person
from web.admin.paging import Page, page_ids, page_number
from web.admin.referral_forms import CancelForm, DeclineForm, NoteForm, RerouteForm
from web.context import sira
from web.db import get_session

# Statuses in which a referral waits on the coordination desk when it has no provider.
AT_DESK = (Status.NEW, Status.DECLINED, Status.EXPIRED)
DISCLOSED = (Status.ACCEPTED, Status.CLOSED)  # a provider sees who to call only from acceptance
STATUS_LABELS = REFERRAL_STATUSES
DONE = {
    "rerouted": _("Referral re-routed."),
    "nobody_desk": _(
        "No provider takes this need in this region: the referral stays at the coordination desk. Nothing was sent."
    ),
    "nobody_kept": _(
        "No other provider takes this need in this region: the referral stays with its provider. Nothing was sent."
    ),
    "cancelled": _("Referral cancelled."),
    "noted": _("Note added."),
    "accepted": _("Referral accepted: the person is waiting for your call."),
    "declined": _("Referral declined: it goes to another provider."),
    "declined_desk": _("Referral declined: no other provider takes it here, the coordination desk will."),
    "closed": _("Referral closed: the person will be asked whether they were helped."),
    "unflagged": _(
        "Flag cleared: the referral no longer waits for a coordinator's look. Nothing else was changed."
    ),
    "not_flagged": _("This referral was not flagged: nothing was changed."),
}


def visible(user: User) -> Select:
    """The referrals a user may see at all: a provider's focal point sees its provider's only."""
    query = select(Referral)
    if user.role == Role.PROVIDER:
        query = query.where(Referral.provider_id == user.provider_id)
    return query


def referral_or_404(session: Session, code: str, user: User, for_update: bool = False) -> Referral:
    """The object check: another provider's referral does not exist, as far as this user knows."""
    query = visible(user).where(Referral.code == code[:8].upper())
    referral = session.scalar(query.with_for_update() if for_update else query)
    if referral is None:
        abort(404)
    return referral


def staff_action(code: str) -> tuple[User, Session, Referral]:
    """The user, the session and the referral (locked) of a coordinator's action on it. The object
    check comes first: a focal point gets a 404 for another provider's referral, a 403 for its own."""
    user, session = current_user(), get_session()
    found = referral_or_404(session, code, user, for_update=True)
    if user.role not in STAFF:
        abort(403)
    return user, session, found


def overdue_clause(reminder_hours: int) -> object:
    """Past the provider's first deadline without an answer, or waiting on the desk."""
    cutoff = utcnow() - timedelta(hours=reminder_hours)
    return or_(
        and_(Referral.status == Status.SENT, Referral.assigned_at <= cutoff),
        and_(Referral.provider_id.is_(None), Referral.status.in_([s.value for s in AT_DESK])),
    )


def to_handle_clause(reminder_hours: int) -> object:
    """What waits for a coordinator: overdue or at the desk, or flagged for a coordinator (a
    follow-up answered "not served" or "other help" is flagged: the SMS told the person a
    coordinator would contact them, so only a coordinator clears it); the header's count, and the
    list's "waiting" filter."""
    return or_(overdue_clause(reminder_hours), Referral.flagged)


@dataclass(frozen=True)
class Filters:
    """The list's filters. "Waiting for the coordination" (`overdue`) is the header's count;
    "flagged" narrows to what was flagged for a coordinator (see `models.referral.Flag`)."""

    status: str = ""
    category: str = ""
    region: str = ""
    provider: str = ""  # a provider id, or "desk"
    overdue: bool = False
    flagged: bool = False

    @classmethod
    def from_args(cls, args: dict[str, str]) -> Filters:
        """Unknown values are dropped rather than refused: they only come from edited URLs."""
        status = args.get("status", "")
        provider = args.get("provider", "")
        return cls(
            status=status if status in {s.value for s in Status} else "",
            category=args.get("category", "")[:30],
            region=args.get("region", "")[:20],
            provider=provider if provider == "desk" or number(provider) is not None else "",
            overdue=args.get("overdue") == "1",
            flagged=args.get("flagged") == "1",
        )

    def apply(self, query: Select, reminder_hours: int) -> Select:
        if self.status:
            query = query.where(Referral.status == self.status)
        if self.category:
            query = query.where(Referral.category == self.category)
        if self.region:
            query = query.where(Referral.region == self.region)
        if self.provider == "desk":
            query = query.where(Referral.provider_id.is_(None))
        elif self.provider:
            query = query.where(Referral.provider_id == int(self.provider))
        if self.overdue:
            query = query.where(to_handle_clause(reminder_hours))
        if self.flagged:
            query = query.where(Referral.flagged)
        return query

    def args(self) -> dict[str, str]:
        values = {"status": self.status, "category": self.category, "region": self.region,
                  "provider": self.provider, "overdue": "1" if self.overdue else "",
                  "flagged": "1" if self.flagged else ""}  # fmt: skip
        return {k: v for k, v in values.items() if v}


def directory(session: Session) -> tuple[dict[str, str], dict[str, str], dict[int, str]]:
    """Names of categories, regions and providers: small tables, read whole."""
    return (
        category_names(session),
        dict(session.execute(select(Region.code, Region.name).order_by(Region.name)).all()),
        dict(session.execute(select(Provider.id, Provider.name).order_by(Provider.name)).all()),
    )


@bp.get("/referrals")
@require(*EVERYONE)
def referrals() -> ResponseReturnValue:
    """Newest first; LIMIT/OFFSET on ids in the database, one row more than shown to know of a next page."""
    user, session = current_user(), get_session()
    settings = sira().settings
    filters = Filters.from_args(request.args)
    number = page_number(request.args)
    order = (Referral.created_at.desc(), Referral.id.desc())
    ids = page_ids(filters.apply(visible(user), settings.reminder_after_hours), Referral.id, order, number)
    rows = list(session.scalars(select(Referral).join(ids, ids.c.id == Referral.id).order_by(*order)))
    page = Page(number, rows[: Page.SIZE], has_next=len(rows) > Page.SIZE)
    categories, regions, providers = directory(session)
    cutoff = utcnow() - timedelta(hours=settings.reminder_after_hours)
    late = {r.id for r in page.items if is_overdue(r, cutoff)}
    return render_template(
        "admin/referrals.html", page=page, filters=filters, categories=categories, regions=regions,
        providers=providers, late=late, statuses=STATUS_LABELS, done=DONE.get(request.args.get("done", "")),
        show_flags=user.role != Role.PROVIDER,
    )  # fmt: skip


def is_overdue(referral: Referral, cutoff: object) -> bool:
    if referral.provider_id is None:
        return referral.status in AT_DESK
    return (
        referral.status == Status.SENT
        and referral.assigned_at is not None
        and (as_utc(referral.assigned_at) <= cutoff)
    )


@dataclass(frozen=True)
class ReturneeView:
    """What the page may show of the returnee: clear, masked, or nothing yet."""

    first_name: str
    phone: str
    language: str
    region: str
    masked: bool


def returnee_view(returnee: Returnee | None, referral: Referral, user: User) -> ReturneeView | None:
    if returnee is None:
        return None
    if user.role == Role.PROVIDER and referral.status not in DISCLOSED:
        return None
    shown = person(returnee, user)
    return ReturneeView(
        first_name=shown.first_name,
        phone=shown.phone,
        language=returnee.language,
        region=returnee.region or "-",
        masked=shown.masked,
    )


@dataclass(frozen=True)
class Shown:
    """One event of the timeline as this user may read it."""

    event: ReferralEvent
    note: str | None


def timeline(referral: Referral, user: User) -> list[Shown]:
    """Staff read every event and note. A provider's focal point reads only what concerns its
    own provider, and no one else's notes (a coordinator's note or another provider's decline
    reason may describe the person); a viewer reads no notes at all."""
    shown = []
    for event in referral.events:
        if user.role == Role.PROVIDER and event.provider_id not in (None, user.provider_id):
            continue
        own = event.actor == f"provider:{user.provider_id}"
        visible = user.role in STAFF or (user.role == Role.PROVIDER and own)
        shown.append(Shown(event, event.note if visible else None))
    return shown


def actor_names(session: Session, actors: set[str], user: User) -> dict[str, str]:
    """Readable names for event actors ("user:3", "provider:7"); "system" and "returnee" are labels.

    Staff members are named to staff only: others see the coordination desk. Providers are named
    to everyone (a focal point's timeline holds only its own provider's events)."""
    users = [i for a in actors if a.startswith("user:") and (i := number(a[5:])) is not None]
    providers = [i for a in actors if a.startswith("provider:") and (i := number(a[9:])) is not None]
    names: dict[str, str] = {}
    if user.role not in STAFF:
        names |= {a: translate(_("Coordination desk")) for a in actors if a.startswith("user:")}
    elif users:
        names |= {
            f"user:{i}": e for i, e in session.execute(select(User.id, User.email).where(User.id.in_(users)))
        }
    if providers:
        names |= {
            f"provider:{i}": n
            for i, n in session.execute(select(Provider.id, Provider.name).where(Provider.id.in_(providers)))
        }
    return names


@bp.get("/referrals/<code>")
@require(*EVERYONE)
def referral(code: str) -> ResponseReturnValue:
    """The timeline and, for staff, the actions; every view is audited (it may show who asked)."""
    user, session = current_user(), get_session()
    found = referral_or_404(session, code, user)
    returnee = session.get(Returnee, found.returnee_id) if found.returnee_id else None
    shown = returnee_view(returnee, found, user)
    categories, regions, providers = directory(session)
    candidates: list[Provider] = []
    status = Status(found.status)
    can_reroute = user.role in STAFF and coordination.can_reroute(found)
    if can_reroute:
        candidates = list(
            session.scalars(
                select(Provider)
                .where(Provider.active.is_(True), Provider.categories.any(Category.code == found.category))
                .order_by(Provider.name)
            )
        )
    audit(session, user.id, "referral.view", "referral", found.code,
          returnee_id=found.returnee_id, shown=shown is not None, masked=bool(shown and shown.masked))  # fmt: skip
    session.commit()
    return render_template(
        "admin/referral.html", referral=found, returnee=shown, categories=categories, regions=regions,
        providers=providers, statuses=STATUS_LABELS, events=timeline(found, user),
        actors=actor_names(session, {e.actor for e in found.events}, user),
        candidates=candidates, can_reroute=can_reroute, can_cancel=user.role in STAFF and Status.CANCELLED in ALLOWED[status],
        can_note=user.role in STAFF, done=DONE.get(request.args.get("done", "")),
        show_flag=user.role != Role.PROVIDER and found.flagged, can_unflag=user.role in STAFF and found.flagged,
        can_answer=user.role == Role.PROVIDER and status == Status.SENT,
        can_close=user.role == Role.PROVIDER and status == Status.ACCEPTED,
        follow_ups=follow_ups_of(session, found) if user.role in (*STAFF, Role.VIEWER) else [], follow_up_labels=FOLLOW_UP_STATUSES,
    )  # fmt: skip


def follow_ups_of(session: Session, referral: Referral) -> list[FollowUp]:
    """The questions asked after closing and what came back: staff read the outcome, not the texts."""
    return list(
        session.scalars(select(FollowUp).where(FollowUp.referral_id == referral.id).order_by(FollowUp.day))
    )


def finish(
    session: Session, referral: Referral, sms_ids: list[int], done: str, to_list: bool = False
) -> ResponseReturnValue:
    """Commit, then queue the SMS and drop the returnee's cached USSD profile (it lists referrals)."""
    returnee_hash = session.scalar(select(Returnee.phone_hash).where(Returnee.id == referral.returnee_id))
    sira().outbox.send_after_commit(session, sms_ids)
    if returnee_hash:
        sira().ussd_store.forget_profile(returnee_hash)
    if to_list:
        return redirect(url_for("admin.referrals", done=done))
    return redirect(url_for("admin.referral", code=referral.code, done=done))


@bp.post("/referrals/<code>/reroute")
@require(*EVERYONE)
def reroute(code: str) -> ResponseReturnValue:
    """Send the referral to a chosen provider, or to the next matching one when none is chosen.

    A referral still waiting on a provider is first withdrawn from it: the lifecycle has no
    sent -> sent move, so the withdrawal is recorded as a decline by this user (the event's
    actor says it was the coordination, not the provider).
    """
    user, session, found = staff_action(code)
    picked, chosen_id = RerouteForm(request.form).chosen()
    if picked and chosen_id is None:
        abort(409)
    try:
        done = coordination.reroute(session, found, chosen_id, sira().sms_texts, actor=f"user:{user.id}",
                                    withdrawn_note=_("withdrawn by the coordination"))  # fmt: skip
    except coordination.CannotReroute:
        abort(409)
    previous = done.previous_provider_id
    if not done.found:
        audit(session, user.id, "referral.reroute", "referral", found.code,
              from_provider_id=previous, to_provider_id=previous, chosen=False, found=False)  # fmt: skip
        return finish(session, found, [], "nobody_desk" if previous is None else "nobody_kept")
    audit(session, user.id, "referral.reroute", "referral", found.code,
          from_provider_id=previous, to_provider_id=found.provider_id, chosen=done.chosen)  # fmt: skip
    return finish(session, found, done.sms_ids, "rerouted")


@bp.post("/referrals/<code>/cancel")
@require(*EVERYONE)
def cancel(code: str) -> ResponseReturnValue:
    user, session, found = staff_action(code)
    reason = CancelForm(request.form).reason.data or None
    try:
        found.move(Status.CANCELLED, actor=f"user:{user.id}", channel="web", note=reason)
    except IllegalTransition:
        abort(409)
    audit(session, user.id, "referral.cancel", "referral", found.code)
    return finish(session, found, [], "cancelled")


@bp.post("/referrals/<code>/note")
@require(*EVERYONE)
def note(code: str) -> ResponseReturnValue:
    """A note is an event that keeps the status; its text stays out of the audit log."""
    user, session, found = staff_action(code)
    form = NoteForm(request.form)
    if not form.validate():
        message = next(iter(field_errors(form).values()))[0]
        return render_template("admin/error.html", status=400, message=message), 400
    text = form.note.data
    found.events.append(
        ReferralEvent(from_status=found.status, to_status=found.status, actor=f"user:{user.id}",
                      channel="web", provider_id=found.provider_id, note=text)
    )  # fmt: skip
    audit(session, user.id, "referral.note", "referral", found.code)
    return finish(session, found, [], "noted")


@bp.post("/referrals/<code>/unflag")
@require(*EVERYONE)
def unflag(code: str) -> ResponseReturnValue:
    """A coordinator has looked at a flagged referral: the flag goes, nothing else changes, no SMS.

    Clearing one that is not flagged (a second click, a stale page) says so and changes nothing.
    """
    user, session, found = staff_action(code)
    if not found.flagged:
        session.rollback()
        return redirect(url_for("admin.referral", code=found.code, done="not_flagged"))
    audit(session, user.id, "referral.unflag", "referral", found.code, flag=found.flag_reason)
    found.clear_flag()
    session.commit()
    return redirect(url_for("admin.referral", code=found.code, done="unflagged"))


ANSWERED = {Command.ACCEPT: "accepted", Command.DECLINE: "declined", Command.CLOSE: "closed"}


def provider_answer(code: str, action: str) -> ResponseReturnValue:
    """A focal point answers on the web as its phones do by SMS: the same lifecycle, the same SMS.

    Only its own provider's referral exists for it (404 otherwise); a move the lifecycle forbids
    (already accepted, closed...) is a 409 that changes nothing.
    """
    user, session = current_user(), get_session()
    found = referral_or_404(session, code, user, for_update=True)
    by = lifecycle.Answer.on_web(session.get(Provider, user.provider_id), user.id)
    texts = sira().sms_texts
    reason = DeclineForm(request.form).reason.data
    try:
        sms_ids = lifecycle.answer(session, found, action, by, texts, reason)
    except IllegalTransition:
        session.rollback()
        abort(409)
    detail = {"reason": bool(reason)} if action == Command.DECLINE else {}
    audit(session, user.id, f"referral.{action}", "referral", found.code, **detail)
    # A declined referral has gone to another provider: its page no longer exists for this user.
    done = "declined_desk" if action == Command.DECLINE and found.provider_id is None else ANSWERED[action]
    return finish(session, found, sms_ids, done, to_list=action == Command.DECLINE)


@bp.post("/referrals/<code>/accept")
@require(Role.PROVIDER)
def accept(code: str) -> ResponseReturnValue:
    return provider_answer(code, Command.ACCEPT)


@bp.post("/referrals/<code>/decline")
@require(Role.PROVIDER)
def decline(code: str) -> ResponseReturnValue:
    return provider_answer(code, Command.DECLINE)


@bp.post("/referrals/<code>/close")
@require(Role.PROVIDER)
def close(code: str) -> ResponseReturnValue:
    return provider_answer(code, Command.CLOSE)
