"""What the coordination desk does to a referral or a message, as use cases: the admin's views
read the form, check the user, call these, audit and commit; the rules live here.

Each takes the caller's session and leaves the commit to it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import update
from sqlalchemy.orm import Session

from flows.sms import SmsTexts
from models.base import utcnow
from models.directory import Provider
from models.messaging import OutboundSms, SmsStatus
from models.referral import ALLOWED, Referral, Status
from services import lifecycle
from services.referrals import assign


class CannotReroute(Exception):
    """The referral cannot go where it was asked to (its status, or the provider chosen)."""


@dataclass(frozen=True)
class Rerouted:
    """What a re-route did: the SMS to queue, and whether a provider was found at all."""

    previous_provider_id: int | None
    found: bool
    chosen: bool
    sms_ids: list[int] = field(default_factory=list)


def can_reroute(referral: Referral) -> bool:
    """Still waiting on a provider (withdrawn first) or free to be sent again."""
    status = Status(referral.status)
    return status == Status.SENT or Status.SENT in ALLOWED[status]


def reroute(
    session: Session,
    referral: Referral,
    chosen_id: int | None,
    texts: SmsTexts,
    actor: str,
    withdrawn_note: str,
) -> Rerouted:
    """Send the referral to the provider chosen, or to the next matching one when none is.

    A referral still waiting on a provider is first withdrawn from it: the lifecycle has no
    sent -> sent move, so the withdrawal is recorded as a decline by `actor` with
    `withdrawn_note`. When no provider is left, the referral stays where it is and nothing is sent.
    """
    if not can_reroute(referral):
        raise CannotReroute(referral.status)
    chosen = session.get(Provider, chosen_id) if chosen_id is not None else None
    if chosen_id is not None and (
        chosen is None
        or not chosen.active
        or chosen.id == referral.provider_id
        or referral.category not in {c.code for c in chosen.categories}
    ):
        raise CannotReroute(f"provider {chosen_id}")
    previous = referral.provider_id
    if chosen is None and lifecycle.next_provider(session, referral) is None:
        lifecycle.no_provider_left(referral, actor, "web")
        return Rerouted(previous, found=False, chosen=False)
    if referral.status == Status.SENT:
        referral.move(Status.DECLINED, actor=actor, channel="web", note=withdrawn_note).provider_id = previous
    if chosen is not None:
        sms_ids = assign(session, referral, chosen, texts, actor=actor, channel="web")
    else:
        sms_ids = lifecycle.reroute(session, referral, texts, actor=actor, channel="web")
    return Rerouted(previous, found=True, chosen=chosen is not None, sms_ids=sms_ids)


def retry_dead_sms(session: Session, sms_id: int) -> bool:
    """Give a dead message another round of tries from now; False if it is not dead.

    Only a dead message: anything else is on its way, sent, or refused for good by the gateway.
    """
    return bool(
        session.execute(
            update(OutboundSms)
            .where(OutboundSms.id == sms_id, OutboundSms.status == SmsStatus.DEAD)
            .values(status=SmsStatus.PENDING, attempts=0, next_attempt_at=utcnow(), claimed_at=None)
        ).rowcount
    )
