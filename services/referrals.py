"""Referring a returnee: choose the provider, write the referral and its SMS in one transaction.

Matching follows the brief: providers serving the category in the returnee's region, the least
loaded relative to its daily capacity first; none in the region → a national one; none at all →
the coordination desk (a referral without provider). Minors go to child protection whatever they
asked for. The same returnee asking again for the same open need gets their referral back.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import timedelta

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from flows.sms import R_DESK, Sms, SmsTexts
from gateway.segments import segment_count
from models.base import utcnow
from models.directory import Category, Provider, Region, provider_category, provider_region
from models.messaging import OutboundSms
from models.referral import Referral, ReferralEvent, Status, open_referral_for, unique_code
from models.returnee import Returnee

CHILD_PROTECTION = "child_protection"
MAX_SEGMENTS = 2
SWEEP_GRACE = timedelta(seconds=60)
log = logging.getLogger(__name__)


class NotReferable(ValueError):
    """The returnee has not registered or has withdrawn consent: nothing may be shared."""


@dataclass
class Referred:
    """What `refer` did: the referral (new, or the open one found) and the SMS to send."""

    referral: Referral
    sms_ids: list[int] = field(default_factory=list)


def match_provider(
    session: Session, category: str, region: str | None, exclude: Iterable[int] = ()
) -> Provider | None:
    """The provider that should take a need in a region, or None for the coordination desk."""
    excluded = list(exclude)
    base = (
        select(Provider)
        .join(provider_category, provider_category.c.provider_id == Provider.id)
        .where(provider_category.c.category_code == category, Provider.active.is_(True))
    )
    if excluded:
        base = base.where(Provider.id.not_in(excluded))
    local = base.join(provider_region, provider_region.c.provider_id == Provider.id).where(
        provider_region.c.region_code.in_(_region_and_parent(session, region))
    )
    for query in (local, base.where(Provider.national.is_(True))):
        candidates = list(session.scalars(query.distinct()))
        if candidates:
            return least_loaded(session, candidates)
    return None


def _region_and_parent(session: Session, region: str | None) -> list[str]:
    """A new region is also covered by providers recorded on the region it was cut from."""
    if region is None:
        return []
    parent = session.scalar(select(Region.part_of).where(Region.code == region))
    return [region, parent] if parent else [region]


def least_loaded(session: Session, providers: list[Provider]) -> Provider:
    """The provider with the fewest referrals today relative to its capacity (ties: lowest id)."""
    since = utcnow() - timedelta(days=1)
    counts = dict(
        session.execute(
            select(Referral.provider_id, func.count())
            .where(Referral.provider_id.in_([p.id for p in providers]), Referral.assigned_at >= since)
            .group_by(Referral.provider_id)
        ).all()
    )
    return min(providers, key=lambda p: (counts.get(p.id, 0) / max(p.daily_capacity, 1), p.id))


def refer(
    session: Session, returnee: Returnee, requested: str, texts: SmsTexts, channel: str = "ussd"
) -> Referred:
    """Create (or find) the returnee's referral for a need and queue its SMS in the outbox.

    `channel` is how the request came: the returnee's USSD, or a reception agent ("agent").
    """
    if not returnee.is_registered or returnee.phone_e164 is None:
        raise NotReferable("registration and consent come before any referral")
    existing = open_referral_for(session, returnee.id, requested)
    if existing is not None:
        return Referred(existing)
    category = CHILD_PROTECTION if returnee.is_minor else requested
    referral = Referral(
        code=unique_code(session), returnee_id=returnee.id, category=category,
        requested_category=requested, region=returnee.region,
    )  # fmt: skip
    referral.events.append(
        ReferralEvent(from_status=None, to_status=Status.NEW, actor="returnee", channel=channel)
    )
    try:
        with session.begin_nested():
            session.add(referral)
            session.flush()
    except IntegrityError:
        raced = open_referral_for(session, returnee.id, requested)
        if raced is None:  # no racing request made it: a real fault, to be seen as itself
            raise
        return Referred(raced)  # a racing request created it a moment ago
    result = Referred(referral)
    provider = match_provider(session, category, returnee.region)
    if provider is not None:
        result.sms_ids += assign(session, referral, provider, texts, actor="system", channel="ussd")
        notice, purpose = texts.returnee_received(returnee.language, referral.code), "returnee_received"
    else:  # no service for this need here: say so now, as when the last provider declines
        notice, purpose = texts.to_returnee(returnee.language, R_DESK, code=referral.code), "returnee_desk"
    row = queue_sms(session, returnee.phone_e164, returnee.phone_hash, notice, purpose, referral.id)
    result.sms_ids.append(row.id)
    return result


def assign(
    session: Session, referral: Referral, provider: Provider, texts: SmsTexts, actor: str, channel: str
) -> list[int]:
    """Give the referral to a provider and alert each of its numbers; returns the SMS ids."""
    referral.provider_id = provider.id
    referral.assigned_at = utcnow()
    referral.reminded_at = None
    event = referral.move(Status.SENT, actor=actor, channel=channel)
    event.provider_id = provider.id
    category = session.get(Category, referral.category)
    region = session.get(Region, referral.region) if referral.region else None
    alert = texts.provider_alert(
        provider.language,
        referral.code,
        category.sms_label if category else "support",
        region.name if region else "-",
    )
    return [
        queue_sms(session, n.phone_e164, n.phone_hash, alert, "provider_alert", referral.id).id
        for n in provider.numbers
    ]


def queue_sms(
    session: Session, to_e164: str, to_hash: str, sms: Sms, purpose: str, referral_id: int | None
) -> OutboundSms:
    """Write one message to the outbox; a send job picks it up after the commit.

    Texts are GSM-7 already (flows.sms folds them); a body longer than two segments, which only
    a very long name could cause, is cut rather than sent as three.
    """
    if segment_count(sms.body) > MAX_SEGMENTS:
        log.warning("%s SMS cut to %d segments", purpose, MAX_SEGMENTS)
        sms = Sms(sms.body[: 2 * 153 - 3] + "...", sms.sender)
    row = OutboundSms(
        to_e164=to_e164,
        to_hash=to_hash,
        sender=sms.sender,
        body=sms.body,
        purpose=purpose,
        referral_id=referral_id,
        segments=segment_count(sms.body),
        # Its own job is queued right after the commit; the sweeper steps in only if that failed.
        next_attempt_at=utcnow() + SWEEP_GRACE,
    )
    session.add(row)
    session.flush()
    return row
