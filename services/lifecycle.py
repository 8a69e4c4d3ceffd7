"""A referral's life after it is sent: accepted, declined and re-routed, closed, expired.

Disclosure follows acceptance: only the provider that accepts learns the returnee's first name
and number (the number that accepted, by SMS; its focal point, on the admin web). The returnee
hears of what matters to them (acceptance, closing, no provider left), unless they sent STOP.
Every change is a referral event; the caller commits and queues the SMS.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.orm import Session

from flows import sms as texts_
from flows.sms import Sms, SmsTexts
from flows.sms_commands import Command
from models.base import utcnow
from models.directory import Category, Provider, ProviderNumber, Region
from models.messaging import OutboundSms
from models.referral import Flag, IllegalTransition, Referral, ReferralEvent, Status
from models.returnee import Returnee
from services.referrals import assign, match_provider, queue_sms


def notify_returnee(
    session: Session,
    returnee: Returnee | None,
    sms: Sms,
    purpose: str,
    referral_id: int | None,
    essential: bool = False,
) -> list[int]:
    """Queue an SMS to the returnee unless they opted out (essential messages go regardless)."""
    if returnee is None or returnee.phone_e164 is None:
        return []
    if returnee.opted_out_at is not None and not essential:
        return []
    return [queue_sms(session, returnee.phone_e164, returnee.phone_hash, sms, purpose, referral_id).id]


def reply_to(
    session: Session, number: ProviderNumber, sms: Sms, purpose: str, referral_id: int | None
) -> list[int]:
    return [queue_sms(session, number.phone_e164, number.phone_hash, sms, purpose, referral_id).id]


@dataclass(frozen=True)
class Answer:
    """Who answers for the provider: a number by SMS (it gets the confirmation), or a user on the web.

    On the web the page shows the outcome, so the provider's phones get no confirmation SMS; the
    returnee is told exactly as when the provider answers by SMS.
    """

    provider: Provider
    number: ProviderNumber | None
    actor: str
    channel: str

    @classmethod
    def of(cls, who: ProviderNumber | Answer, channel: str = "sms") -> Answer:
        """`who` as an answer: a provider's number answers on `channel` (SMS, or its USSD menu)."""
        if isinstance(who, Answer):
            return who
        return cls(who.provider, who, f"provider:{who.provider.id}", channel)

    @classmethod
    def on_web(cls, provider: Provider, user_id: int) -> Answer:
        return cls(provider, None, f"user:{user_id}", "web")

    def reply(self, session: Session, sms: Sms, purpose: str, referral_id: int) -> list[int]:
        return reply_to(session, self.number, sms, purpose, referral_id) if self.number else []

    def contact_phone(self) -> str:
        """The number the returnee should call: the provider's contact, else the number that answered."""
        if self.provider.contact_phone:
            return self.provider.contact_phone
        number = self.number or next(iter(self.provider.numbers), None)
        return number.phone_e164 if number else "-"


def accept(session: Session, referral: Referral, who: ProviderNumber | Answer, texts: SmsTexts) -> list[int]:
    """The provider takes the referral: now, and only now, it learns who to call."""
    by = Answer.of(who)
    provider = by.provider
    referral.move(Status.ACCEPTED, actor=by.actor, channel=by.channel).provider_id = provider.id
    returnee = session.get(Returnee, referral.returnee_id) if referral.returnee_id else None
    name = (returnee.first_name if returnee else None) or "-"
    phone = (returnee.phone_e164 if returnee else None) or "-"
    sms_ids = by.reply(
        session, texts.to_provider(provider.language, texts_.P_ACCEPTED, code=referral.code, name=name, phone=phone),
        "provider_accepted", referral.id,
    )  # fmt: skip
    if returnee is not None:
        notice = texts.to_returnee(returnee.language, texts_.R_ACCEPTED, code=referral.code,
                                   phone=by.contact_phone())  # fmt: skip
        sms_ids += notify_returnee(session, returnee, notice, "returnee_accepted", referral.id)
    return sms_ids


def decline(
    session: Session, referral: Referral, who: ProviderNumber | Answer, reason: str, texts: SmsTexts
) -> list[int]:
    """The provider cannot take it: thank them and send the referral to the next provider."""
    by = Answer.of(who)
    provider = by.provider
    event = referral.move(Status.DECLINED, actor=by.actor, channel=by.channel, note=reason or None)
    event.provider_id = provider.id
    sms_ids = by.reply(
        session, texts.to_provider(provider.language, texts_.P_DECLINED, code=referral.code),
        "provider_declined", referral.id,
    )  # fmt: skip
    return sms_ids + reroute(session, referral, texts, actor="system", channel=by.channel)


def next_provider(session: Session, referral: Referral) -> Provider | None:
    """The next matching provider, never one that already declined, let it expire or holds it."""
    tried = set(
        session.scalars(
            select(ReferralEvent.provider_id).where(
                ReferralEvent.referral_id == referral.id,
                ReferralEvent.to_status.in_([Status.DECLINED, Status.EXPIRED]),
                ReferralEvent.provider_id.is_not(None),
            )
        )
    )
    if referral.provider_id is not None:
        tried.add(referral.provider_id)
    return match_provider(session, referral.category, referral.region, exclude=tried)


NO_PROVIDER_LEFT = "re-route found no other provider"


def no_provider_left(referral: Referral, actor: str, channel: str) -> None:
    """Record a re-route that found no one: the status and the provider stay as they were."""
    referral.events.append(
        ReferralEvent(from_status=referral.status, to_status=referral.status, actor=actor, channel=channel,
                      provider_id=referral.provider_id, note=NO_PROVIDER_LEFT)
    )  # fmt: skip


def reroute(session: Session, referral: Referral, texts: SmsTexts, actor: str, channel: str) -> list[int]:
    """The next matching provider; else the desk, where the returnee is told once, not at every try.

    A referral already at the desk that finds no one changes nothing and sends nothing: the try
    is recorded as an event, so the timeline shows it was made.
    """
    provider = next_provider(session, referral)
    if provider is not None:
        return assign(session, referral, provider, texts, actor=actor, channel=channel)
    if referral.provider_id is None:
        no_provider_left(referral, actor, channel)
        return []
    referral.provider_id = None
    referral.flag(Flag.NO_PROVIDER)
    returnee = session.get(Returnee, referral.returnee_id) if referral.returnee_id else None
    if returnee is None or told_of_desk(session, referral):
        return []
    notice = texts.to_returnee(returnee.language, texts_.R_DESK, code=referral.code)
    return notify_returnee(session, returnee, notice, "returnee_desk", referral.id)


def told_of_desk(session: Session, referral: Referral) -> bool:
    """Whether the returnee was already told that a coordinator is looking for this referral."""
    query = select(OutboundSms.id).where(
        OutboundSms.referral_id == referral.id, OutboundSms.purpose == "returnee_desk"
    )
    return session.scalar(query.limit(1)) is not None


def close(session: Session, referral: Referral, who: ProviderNumber | Answer, texts: SmsTexts) -> list[int]:
    """The provider served the returnee: ask the returnee whether they were helped."""
    by = Answer.of(who)
    provider = by.provider
    referral.move(Status.CLOSED, actor=by.actor, channel=by.channel).provider_id = provider.id
    referral.feedback_requested_at = utcnow()
    sms_ids = by.reply(
        session, texts.to_provider(provider.language, texts_.P_CLOSED, code=referral.code),
        "provider_closed", referral.id,
    )  # fmt: skip
    returnee = session.get(Returnee, referral.returnee_id) if referral.returnee_id else None
    if returnee is not None:
        question = texts.to_returnee(returnee.language, texts_.R_FEEDBACK, code=referral.code)
        sms_ids += notify_returnee(session, returnee, question, "returnee_feedback", referral.id)
    return sms_ids


def remind(session: Session, referral: Referral, texts: SmsTexts) -> list[int]:
    """A day without an answer: remind every number of the provider."""
    provider = session.get(Provider, referral.provider_id)
    category = session.get(Category, referral.category)
    region = session.get(Region, referral.region) if referral.region else None
    sms = texts.to_provider(
        provider.language, texts_.P_REMINDER, {"category": category.sms_label if category else "support"},
        code=referral.code, region=region.name if region else "-",
    )  # fmt: skip
    referral.events.append(
        ReferralEvent(from_status=referral.status, to_status=referral.status, actor="system", channel="system",
                      provider_id=provider.id, note="reminder sent")
    )  # fmt: skip
    return [
        queue_sms(session, n.phone_e164, n.phone_hash, sms, "provider_reminder", referral.id).id
        for n in provider.numbers
    ]


def expire(session: Session, referral: Referral, texts: SmsTexts) -> list[int]:
    """Two days without an answer: flag for the coordinators and re-route.

    The caller has already moved the status to `expired` with a compare-and-set UPDATE, so that
    with several workers each deadline acts once; this records the event and re-routes.
    """
    referral.events.append(
        ReferralEvent(
            from_status=Status.SENT,
            to_status=Status.EXPIRED,
            actor="system",
            channel="system",
            provider_id=referral.provider_id,
            note="no answer before the deadline",
        )
    )
    referral.flag(Flag.NO_ANSWER)
    return reroute(session, referral, texts, actor="system", channel="system")


def answer(session: Session, referral: Referral, action: str, who: ProviderNumber | Answer, texts: SmsTexts,
           reason: str = "") -> list[int]:  # fmt: skip
    """The provider's answer, whichever channel brought it (SMS, its USSD menu, the web):
    `accept`, `decline` (with its `reason`) or `close`.

    Raises `IllegalTransition`, having changed nothing, when the referral's status forbids it.
    """
    if action == Command.DECLINE:
        return decline(session, referral, who, reason, texts)
    return {Command.ACCEPT: accept, Command.CLOSE: close}[action](session, referral, who, texts)


# What a number's answer by code did (also how the SMS it came in is marked as handled).
ANSWERED, UNKNOWN_CODE, NOT_ASSIGNED, ILLEGAL = "answered", "unknown_code", "not_assigned", "illegal_transition"  # fmt: skip


@dataclass(frozen=True)
class Answered:
    """What a number's answer by code did: `outcome` is one of the four above."""

    outcome: str
    referral: Referral | None = None  # None for a code no referral has
    sms_ids: list[int] = field(default_factory=list)


def answer_code(session: Session, code: str, action: str, who: Answer, texts: SmsTexts,
                reason: str = "") -> Answered:  # fmt: skip
    """A provider's number answers a referral by its code (SMS, USSD): only a referral of its own
    provider, and only as the referral's status allows; anything else changes nothing."""
    referral = session.scalar(select(Referral).where(Referral.code == code).with_for_update())
    if referral is None:
        return Answered(UNKNOWN_CODE)
    if referral.provider_id != who.provider.id:
        return Answered(NOT_ASSIGNED, referral)
    try:
        sms_ids = answer(session, referral, action, who, texts, reason)
    except IllegalTransition:
        return Answered(ILLEGAL, referral)
    return Answered(ANSWERED, referral, sms_ids)
