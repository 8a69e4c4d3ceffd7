"""Answering an incoming SMS: a provider's command on its referral, or a returnee's keyword.

Every message gets an answer, never silence: a command that cannot apply says why, an unknown
text gets the help message; but no number, a provider's included, gets more than
`SMS_REPLY_LIMIT` answers within `SMS_REPLY_WINDOW_SECONDS`. Past that, a message is still
acted on (a focal point's OK and FINI still move its referrals) but not answered, is stored as
`reply_limited`, and the first one of a window is audited: a phone with an auto-reply would
otherwise answer our answers for ever. A provider acts only on referrals assigned to it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from config import Settings
from flows import sms as texts_
from flows.i18n import DEFAULT_LANGUAGE
from flows.options import REFERRAL_STATUSES
from flows.sms import SmsTexts
from flows.sms_commands import Command, Parsed, parse
from models.admin import audit
from models.base import as_utc, utcnow
from models.db import insert_ignore
from models.directory import ProviderNumber
from models.follow_up import ANSWERS, FollowUp, FollowUpStatus
from models.messaging import InboundSms, OutboundSms
from models.phone import phone_hash
from models.referral import Flag, Referral, open_clause
from models.returnee import Returnee, find_by_phone_hash
from models.returnee import get_or_create as get_or_create_returnee
from services import lifecycle
from services.erasure import (
    CONFIRMATION,
    MAX_WRONG_PINS,
    erase_pin_matches,
    erase_returnee,
    kill_erase_pin,
    new_erase_pin,
)

REPLIES = ("provider_reply", "returnee_reply")  # the purposes of an answer to the sender
REPLY_LIMITED = "reply_limited"
FOLLOW_UP_ANSWER = "follow_up"  # an answer to a follow-up's question
BAD_ANSWER = "follow_up_help"  # a text a pending follow-up cannot take: its help, nothing changed
WRONG_PIN = "erase_bad_pin"


@dataclass(frozen=True)
class ReplyLimit:
    """At most `limit` answers to one number within `window_seconds`, whoever it is."""

    limit: int
    window_seconds: int

    @classmethod
    def from_settings(cls, settings: Settings) -> ReplyLimit:
        return cls(settings.sms_reply_limit, settings.sms_reply_window_seconds)

    def answers_left(self, session: Session, digest: str) -> int:
        """Counted in the outbox, so the spool's replay and every web process share one count."""
        since = utcnow() - timedelta(seconds=self.window_seconds)
        sent = session.scalar(
            select(func.count(OutboundSms.id)).where(
                OutboundSms.to_hash == digest,
                OutboundSms.purpose.in_(REPLIES),
                OutboundSms.created_at >= since,
            )
        )
        return self.limit - (sent or 0)


@dataclass(frozen=True)
class Received:
    """What storing an incoming SMS led to; the caller commits, then queues and forgets."""

    outcome: str | None  # None: this gateway id was already handled
    sms_ids: list[int] = field(default_factory=list)
    touched: list[str] = field(default_factory=list)  # phone hashes whose cached USSD profile is stale
    erased: str | None = None  # phone hash whose USSD state must go


def receive(
    session: Session,
    fields: dict[str, str],
    texts: SmsTexts,
    hash_key: str,
    replies: ReplyLimit,
    act: bool = True,
) -> Received:
    """Store a checked incoming SMS once (by the gateway's id) and act on it, inside the caller's
    transaction. Shared by the webhook and the replay of the spool, so both do exactly the same.

    `fields`: id, from (E.164), to, text, linkId, date and received_at (ISO 8601). With `act`
    false (a sender over its rate limit) the message is only stored, for the coordinators,
    unless it comes from a provider's registered number: a focal point working through a backlog
    (OK, then FINI, for each referral) must not see its answers dropped without a word.
    """
    digest = phone_hash(fields["from"], hash_key)
    new_id = insert_ignore(
        session, InboundSms, gateway_id=fields["id"], from_e164=fields["from"], from_hash=digest,
        to=fields["to"], text=fields["text"], link_id=fields.get("linkId") or None,
        sent_at=datetime.fromisoformat(fields["date"]), received_at=datetime.fromisoformat(fields["received_at"]),
    )  # fmt: skip
    if new_id is None:
        return Received(None)
    message = session.get(InboundSms, new_id)
    if not act and not _is_provider(session, digest):
        message.handled_as = "rate_limited"
        return Received(message.handled_as)
    parsed = parse(message.text)
    may_answer = replies.answers_left(session, digest) > 0
    sms_ids = handle(session, message, parsed, texts, hash_key, may_answer)
    if message.handled_as == REPLY_LIMITED and _first_limited(session, digest, replies, message.id):
        audit(session, None, "sms.replies_stopped", "inbound_sms", message.id, sender=message.sender_kind)
    touched = [digest] if message.sender_kind == "returnee" else _returnee_of(session, parsed.code)
    erased = digest if message.handled_as == "erased" else None
    return Received(message.handled_as, sms_ids, touched, erased)


def _first_limited(session: Session, digest: str, replies: ReplyLimit, message_id: int) -> bool:
    """Whether this is the first message of the window left unanswered (the one to audit)."""
    since = utcnow() - timedelta(seconds=replies.window_seconds)
    earlier = session.scalar(
        select(InboundSms.id).where(
            InboundSms.from_hash == digest, InboundSms.handled_as == REPLY_LIMITED,
            InboundSms.received_at >= since, InboundSms.id != message_id,
        ).limit(1)
    )  # fmt: skip
    return earlier is None


def _returnee_of(session: Session, code: str | None) -> list[str]:
    """The phone hash of the returnee whose referral a provider's message may have changed."""
    if not code:
        return []
    found = session.scalar(
        select(Returnee.phone_hash)
        .join(Referral, Referral.returnee_id == Returnee.id)
        .where(Referral.code == code)
    )
    return [found] if found else []


def delivery_report(session: Session, fields: dict[str, str]) -> str:
    """Apply a checked delivery report inside the caller's transaction; statuses only move forward.

    `fields`: id, status, failureReason and received_at (ISO 8601).
    """
    moved = session.execute(
        OutboundSms.record_delivery(
            fields["id"], fields["status"], fields.get("failureReason") or None,
            datetime.fromisoformat(fields["received_at"]),
        )
    ).rowcount  # fmt: skip
    if moved:
        return "ok"
    if session.scalar(select(OutboundSms.id).where(OutboundSms.gateway_id == fields["id"])) is None:
        return "unknown id"
    return "ignored: status does not move forward"


def _is_provider(session: Session, digest: str) -> bool:
    return session.scalar(select(ProviderNumber.id).where(ProviderNumber.phone_hash == digest)) is not None


def handle(
    session: Session,
    message: InboundSms,
    parsed: Parsed,
    texts: SmsTexts,
    hash_key: str,
    may_answer: bool = True,
) -> list[int]:
    """Act on one stored incoming message; returns the ids of the SMS to send.

    Without `may_answer` (the sender had its answers for the window) the action still happens,
    but what would only have answered the sender is not sent, and the message is `reply_limited`.
    """
    number = session.scalar(select(ProviderNumber).where(ProviderNumber.phone_hash == message.from_hash))
    if number is not None:
        message.sender_kind = "provider"
        return _provider(session, message, number, parsed, texts, may_answer)
    message.sender_kind = "returnee"
    return _returnee(session, message, parsed, texts, hash_key, may_answer)


def _provider(
    session: Session,
    message: InboundSms,
    number: ProviderNumber,
    parsed: Parsed,
    texts: SmsTexts,
    may_answer: bool,
) -> list[int]:
    lang = number.provider.language

    def answer(msgid: str, outcome: str, referral_id: int | None = None, **values: str) -> list[int]:
        message.handled_as = outcome if may_answer else REPLY_LIMITED
        if not may_answer:
            return []
        return lifecycle.reply_to(
            session, number, texts.to_provider(lang, msgid, **values), "provider_reply", referral_id
        )

    if parsed.command not in (Command.ACCEPT, Command.DECLINE, Command.CLOSE) or not parsed.code:
        return answer(texts_.P_HELP, "provider_help")
    answered = lifecycle.answer_code(session, parsed.code, parsed.command, lifecycle.Answer.of(number), texts,
                                     parsed.rest)  # fmt: skip
    referral = answered.referral
    if referral is None:
        return answer(texts_.P_UNKNOWN_CODE, lifecycle.UNKNOWN_CODE, code=parsed.code)
    message.referral_id = referral.id
    if answered.outcome == lifecycle.NOT_ASSIGNED:
        return answer(texts_.P_NOT_YOURS, lifecycle.NOT_ASSIGNED, referral.id, code=referral.code)
    if answered.outcome == lifecycle.ILLEGAL:
        status = texts.catalogs.gettext(lang, REFERRAL_STATUSES.get(referral.status, referral.status))
        return answer(texts_.P_ILLEGAL, lifecycle.ILLEGAL, referral.id, code=referral.code, status=status)
    message.handled_as = str(parsed.command)
    return answered.sms_ids


def _returnee(
    session: Session, message: InboundSms, parsed: Parsed, texts: SmsTexts, hash_key: str, may_answer: bool
) -> list[int]:
    # Only what answering needs is kept: a number we do not know gets a record for STOP alone (to
    # honour it), never for a question, so an SMS neither brings an erased person back nor
    # creates a record whose language the person did not choose.
    command, choice = parsed.command, parsed.code
    if command is Command.STOP:
        returnee: Returnee | None = get_or_create_returnee(session, message.from_hash)
    else:
        returnee = find_by_phone_hash(session, message.from_hash)
    if returnee is not None:
        returnee.phone_e164 = returnee.phone_e164 or (message.from_e164 if returnee.is_registered else None)
    lang = returnee.language if returnee is not None else DEFAULT_LANGUAGE
    to_e164 = (returnee.phone_e164 if returnee is not None else None) or message.from_e164
    message.handled_as = str(parsed.command)

    def answer(msgid: str, essential: bool = True, **values: str) -> list[int]:
        if returnee is not None and returnee.opted_out_at is not None and not essential:
            return []
        if not may_answer:
            message.handled_as = REPLY_LIMITED
            return []
        sms = texts.to_returnee(lang, msgid, **values)
        return [lifecycle.queue_sms(session, to_e164, message.from_hash, sms, "returnee_reply", None).id]

    if command in (Command.ACCEPT, Command.DECLINE) and not parsed.code:
        # "oui", "ɔwɔ", "non", "ayi" from a returnee answer the feedback question, as 1 and 2 do
        command, choice = Command.FEEDBACK, "1" if command is Command.ACCEPT else "2"
        message.handled_as = str(command)
    if command is Command.STOP:
        returnee.opted_out_at = returnee.opted_out_at or utcnow()
        return answer(texts_.R_STOPPED)
    if command is Command.START:
        if returnee is not None:
            returnee.opted_out_at = None
        return answer(texts_.R_STARTED)
    if command is Command.HELP:
        return answer(texts_.R_HELP)
    if returnee is None:  # nothing is held for this number: nothing to show, erase or thank for
        if command is Command.STATUS:
            return answer(texts_.R_STATUS_NONE)
        if command is Command.ERASE:
            return answer(texts_.R_ERASE_NOTHING)
        message.handled_as = "unknown"
        return answer(texts_.R_UNKNOWN)
    if command is Command.STATUS:
        return _status(session, returnee, texts, answer)
    if command is Command.ERASE:
        return _erase(session, message, returnee, parsed, texts, answer, hash_key)
    if command is Command.FEEDBACK:
        return _answer_question(session, message, returnee, choice or "", answer)
    follow_up = pending_follow_up(session, returnee.id)
    if follow_up is not None:  # a pending question: say again how to answer it, change nothing
        message.handled_as = BAD_ANSWER
        return answer(texts_.R_FOLLOW_UP_HELP, code=follow_up_code(session, follow_up))
    message.handled_as = "unknown"
    return answer(texts_.R_UNKNOWN)


def pending_follow_up(session: Session, returnee_id: int) -> FollowUp | None:
    """The returnee's follow-up still waiting for an answer, the latest asked first."""
    return session.scalar(
        select(FollowUp)
        .where(FollowUp.returnee_id == returnee_id, FollowUp.pending_clause())
        .order_by(FollowUp.sent_at.desc(), FollowUp.id.desc())
        .limit(1)
    )


def follow_up_code(session: Session, follow_up: FollowUp) -> str:
    return session.scalar(select(Referral.code).where(Referral.id == follow_up.referral_id)) or "-"


def _answer_question(
    session: Session, message: InboundSms, returnee: Returnee, choice: str, answer
) -> list[int]:
    """A digit alone answers the question asked last: a follow-up (1, 2, 3), else the feedback
    asked at closing (1, 2). A digit neither can take gets the follow-up's help, or the help."""
    follow_up = pending_follow_up(session, returnee.id)
    feedback = session.scalar(
        select(Referral)
        .where(Referral.returnee_id == returnee.id, Referral.feedback_requested_at.is_not(None),
               Referral.feedback.is_(None))
        .order_by(Referral.feedback_requested_at.desc())
    )  # fmt: skip
    if follow_up is not None and (
        feedback is None or as_utc(follow_up.sent_at) >= as_utc(feedback.feedback_requested_at)
    ):
        return _answer_follow_up(session, message, follow_up, choice, answer)
    if feedback is not None and choice == "1":
        feedback.feedback = "served"
        return answer(texts_.R_FEEDBACK_THANKS)
    if feedback is not None and choice == "2":  # not helped: the desk takes another look, the door stays open
        feedback.feedback = "not_served"
        feedback.flag(Flag.NOT_HELPED)
        return answer(texts_.R_FEEDBACK_NOT_HELPED, code=feedback.code)
    message.handled_as = "unknown"
    return answer(texts_.R_UNKNOWN)


def _answer_follow_up(
    session: Session, message: InboundSms, follow_up: FollowUp, choice: str, answer
) -> list[int]:
    """Record the outcome once (a compare-and-set on `pending`); 2 and 3 flag the referral for the
    coordinators, and the returnee's next dial offers a new request (see phone_profile)."""
    referral = session.get(Referral, follow_up.referral_id)
    message.referral_id = referral.id
    outcome = ANSWERS.get(choice)
    if outcome is None:
        message.handled_as = BAD_ANSWER
        return answer(texts_.R_FOLLOW_UP_HELP, code=referral.code)
    now = utcnow()
    claimed = session.execute(
        update(FollowUp)
        .where(FollowUp.id == follow_up.id, FollowUp.pending_clause())
        .values(status=outcome, answered_at=now)
        .execution_options(synchronize_session=False)
    ).rowcount
    message.handled_as = FOLLOW_UP_ANSWER
    if not claimed:  # answered (the same SMS twice) or timed out in between: thanked, nothing changed
        return answer(texts_.R_FEEDBACK_THANKS)
    if outcome is FollowUpStatus.SERVED:
        return answer(texts_.R_FEEDBACK_THANKS)
    if outcome is FollowUpStatus.NOT_SERVED:
        referral.flag(Flag.FOLLOW_UP_NOT_SERVED)
        return answer(texts_.R_FEEDBACK_NOT_HELPED, code=referral.code)
    referral.flag(Flag.FOLLOW_UP_NEEDS_MORE)
    return answer(texts_.R_FOLLOW_UP_MORE)


def _status(session: Session, returnee: Returnee, texts: SmsTexts, answer) -> list[int]:
    rows = session.scalars(
        select(Referral).where(Referral.returnee_id == returnee.id, open_clause()).order_by(Referral.id)
    ).all()
    if not rows:
        return answer(texts_.R_STATUS_NONE)
    words = [
        f"{r.code} {texts.catalogs.gettext(returnee.language, REFERRAL_STATUSES[r.status])}" for r in rows[:6]
    ]
    return answer(texts_.R_STATUS, list="; ".join(words))


def _erase(
    session: Session,
    message: InboundSms,
    returnee: Returnee,
    parsed: Parsed,
    texts: SmsTexts,
    answer,
    hash_key: str,
) -> list[int]:
    """SUPPRIMER sends a one-time PIN; SUPPRIMER <pin> within ERASE_PIN_MINUTES erases everything.

    Every step is audited; the third wrong PIN since the last one was sent kills it.
    """
    if parsed.code is None or not parsed.code.isdigit():
        pin = new_erase_pin(returnee, hash_key)
        audit(session, None, "erase.pin_sent", "returnee", returnee.id, channel="sms")
        return answer(texts_.R_ERASE_CONFIRM, pin=pin, minutes=str(texts.erase_pin_minutes))
    lifetime = timedelta(minutes=texts.erase_pin_minutes)
    if not erase_pin_matches(returnee, parsed.code, hash_key, lifetime):
        sms_ids = answer(texts_.R_ERASE_BAD_PIN)
        message.handled_as = WRONG_PIN  # counted below, even when the answer was held back
        wrong = _wrong_pins(session, returnee, message)
        if wrong >= MAX_WRONG_PINS and returnee.erase_code_hash:
            kill_erase_pin(returnee)
        audit(session, None, "erase.pin_wrong", "returnee", returnee.id, tries=wrong,
              pin_killed=returnee.erase_code_hash is None)  # fmt: skip
        return sms_ids
    audit(session, None, "erase.done", "returnee", returnee.id, channel="sms")
    sms = texts.to_returnee(returnee.language, texts_.R_ERASED)
    goodbye = lifecycle.queue_sms(
        session, returnee.phone_e164 or message.from_e164, message.from_hash, sms, CONFIRMATION, None
    )
    erase_returnee(session, returnee)
    message.handled_as = "erased"
    return [goodbye.id]


def _wrong_pins(session: Session, returnee: Returnee, message: InboundSms) -> int:
    """Wrong PINs from this phone since the current PIN was sent, this one included."""
    if returnee.erase_requested_at is None:
        return 1
    earlier = session.scalar(
        select(func.count(InboundSms.id)).where(
            InboundSms.from_hash == message.from_hash, InboundSms.handled_as == WRONG_PIN,
            InboundSms.received_at >= returnee.erase_requested_at, InboundSms.id != message.id,
        )
    )  # fmt: skip
    return (earlier or 0) + 1


def opt_out(session: Session, fields: dict[str, str], hash_key: str) -> None:
    """The gateway's opt-out notice, inside the caller's transaction: no more non-essential SMS.

    `fields`: phoneNumber (E.164) and received_at (ISO 8601); a second notice changes nothing.
    """
    returnee = get_or_create_returnee(session, phone_hash(fields["phoneNumber"], hash_key))
    returnee.opted_out_at = returnee.opted_out_at or datetime.fromisoformat(fields["received_at"])
