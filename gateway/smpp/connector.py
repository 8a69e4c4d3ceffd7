"""The ESME: takes USSD steps from operator gateways, asks the conversation, sends its screens back.

A step is acknowledged (`deliver_sm_resp`) once the conversation has answered, so a step the
connector never finished is delivered again by the gateway; the same PDU seen again (same phone,
session, dialogue unit, op and input) is acknowledged and not acted on, so it gives one step and
one reply. What was seen is remembered per gateway session: a dial opens a new one, so nothing
remembered of an earlier session with the same number (its_session_info has one octet, which the
gateway reuses) is taken for a repeat in the new one. Phone numbers appear in no log line:
sessions are named by a keyed hash. Every PDU's fate is counted (`sira_smpp_pdus_total`).
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from config import SmppLink
from gateway.smpp import codec
from gateway.smpp.link import Link, Reply
from gateway.smpp.session import Session
from gateway.smpp.steps import Incoming, UnusablePdu, read_incoming, reply_fields, to_step
from gateway.ussd import Conversation, StepRefused
from infra.metrics import SMPP_PDUS

log = logging.getLogger(__name__)

SESSION_LIFETIME = 3600.0  # a gateway session untouched this long is forgotten
MAX_REMEMBERED = 200_000
# How long a PDU is remembered, to recognise it delivered again: a gateway redelivers what it had
# no answer for after a rebind, within its reply time-out.
REPEAT_WINDOW_MIN = 60.0

Where = tuple[str, str, str]  # (link, phone, the gateway's session number or vendor session)


@dataclass
class _Dialogue:
    """One gateway session as the connector knows it: our session id and the PDUs it brought."""

    session_id: str
    touched: float  # time.monotonic()
    typed: bool = False  # the phone has answered a screen since the dial
    over: bool = False  # we ended it (PSSR response)
    shown: bool = False  # the gateway took a screen of it, after our response to the dial
    seen: dict[tuple[object, ...], float] = field(default_factory=dict)  # PDU -> remembered until

    def repeats(self, key: tuple[object, ...], incoming: Incoming, now: float) -> bool:
        """Whether `key` is a PDU of this session delivered again.

        A dial into a session that went on (typed into, ended, or whose screen the gateway took)
        is a new session on a reused number, not its dial again: a gateway delivers again only
        what it has no response to.
        """
        if incoming.dialled and (self.typed or self.over or self.shown):
            return False
        return self.seen.get(key, 0.0) >= now


class Connector:
    """Every link bound, every step through `conversation`, on a pool of worker threads."""

    def __init__(
        self,
        links: Sequence[SmppLink],
        conversation: Conversation,
        *,
        service_code: str,
        redact: Callable[[str], str],
        workers: int = 16,
    ) -> None:
        self.links = [Link(settings, self._on_request) for settings in links]
        self._conversation = conversation
        self._service_code = service_code
        self._redact = redact
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="smpp-step")
        self._lock = threading.Lock()
        self._dialogues: OrderedDict[Where, _Dialogue] = OrderedDict()  # least recently touched first
        self.duplicates = 0
        self._stopping = False

    def start(self) -> None:
        for link in self.links:
            link.start()

    def stop(self, grace: float = 5.0) -> None:
        """Finish the steps under way and send their replies while still bound, then unbind.

        A step that arrives meanwhile is not acknowledged: the gateway delivers it again to the
        next connector, which does it then.
        """
        self._stopping = True
        self._pool.shutdown(wait=True, cancel_futures=False)
        deadline = time.monotonic() + grace
        for link in self.links:
            if not link.drain(deadline):
                log.warning("smpp %s: stopping with replies unsent", link.settings.label)
        for link in self.links:
            link.stop()

    def wait_bound(self, timeout: float) -> bool:
        """True once every link is bound (tests, and the start-up log)."""
        deadline = time.monotonic() + timeout
        return all(link.bound.wait(max(0.0, deadline - time.monotonic())) for link in self.links)

    def _on_request(self, link: Link, session: Session, pdu: Any) -> None:
        """On the session's reader thread: read the PDU, drop a repeat, hand the step to a worker.

        Every PDU gets an answer here or from its step, except at a stop (the gateway delivers it
        again to the next connector); each one's fate is counted.
        """
        label, response = link.settings.label, f"{pdu.command}_resp"
        if self._stopping:
            SMPP_PDUS.labels(label, "left").inc()
            log.info("smpp %s: stopping; %s #%d left for the gateway to deliver again", label, pdu.command,
                     pdu.sequence)  # fmt: skip
            return
        try:
            incoming = read_incoming(link.settings, pdu)
        except UnusablePdu as exc:
            SMPP_PDUS.labels(label, "nacked").inc()
            log.warning("smpp %s: %s #%d nacked: %s", label, pdu.command, pdu.sequence, exc)
            session.respond(response, pdu.sequence, status=exc.status)
            return
        key = incoming.dedup_key(link.settings)
        dialogue = self._admit(link.settings, incoming, key)
        if dialogue is None:
            self.duplicates += 1
            SMPP_PDUS.labels(label, "repeat").inc()
            log.info(
                "smpp %s: %s #%d is a repeat; acknowledged, not acted on", label, pdu.command, pdu.sequence
            )
            session.respond(response, pdu.sequence)
            return
        # The request's identity for the conversation, which answers a repeat from the saved reply
        # (one a restarted connector no longer remembers); keyed, as it holds the input.
        step_id = self._redact("|".join(str(part) for part in key[2:]))[:20]
        self._pool.submit(self._step, link, session, response, pdu.sequence, incoming, dialogue, step_id)

    def _step(
        self,
        link: Link,
        session: Session,
        response: str,
        sequence: int,
        incoming: Incoming,
        dialogue: _Dialogue,
        step_id: str,
    ) -> None:
        settings, session_id = link.settings, dialogue.session_id
        step = to_step(settings, incoming, session_id, settings.service_code or self._service_code, step_id)
        try:
            reply = self._conversation(step)
        except StepRefused as exc:
            SMPP_PDUS.labels(settings.label, "refused").inc()
            log.warning("smpp %s: step of %s refused: %s", settings.label, session_id, exc)
            session.respond(response, sequence, status=codec.RX_T_APPN)
            return
        except Exception:  # the conversation ends its own failures politely; this is a bug, and the
            # gateway must still get an answer, or it delivers the step again and again
            SMPP_PDUS.labels(settings.label, "failed").inc()
            log.exception("smpp %s: step of %s failed", settings.label, session_id)
            session.respond(response, sequence, status=codec.RSYSERR)
            return
        SMPP_PDUS.labels(settings.label, "step").inc()
        # If the bind is gone, the gateway delivers the step again, and its repeat is acknowledged then.
        responded = session.respond(response, sequence)
        if reply.end:  # the session is over: a dial with its number opens another
            with self._lock:
                dialogue.over = True
        deadline = incoming.received_at + settings.reply_timeout
        shown = partial(self._shown, dialogue, session) if responded and incoming.dialled else None
        link.send_reply(Reply(reply_fields(settings, incoming, reply), session_id, deadline, shown))

    def _shown(self, dialogue: _Dialogue, responded_on: Session, carried_by: Session) -> None:
        """The gateway took the dial's screen on the connection our response to the dial went
        out on before it: it has read that response (TCP keeps the order), so it will not deliver
        the dial again, and the next dial with this number is a new session. On a receiver and a
        transmitter bind nothing orders the two: a dial left at its first screen stays
        recognisable as a repeat for the repeat window."""
        if responded_on is carried_by:
            with self._lock:
                dialogue.shown = True

    def _admit(self, settings: SmppLink, incoming: Incoming, key: tuple[object, ...]) -> _Dialogue | None:
        """The gateway session this PDU belongs to, or None when it is one delivered again.

        A dial opens a new session id; answers find it (after a restart, one derived alike).
        """
        where = (settings.label, incoming.phone, incoming.session_key)
        window = max(REPEAT_WINDOW_MIN, 3 * settings.reply_timeout)
        now = time.monotonic()
        with self._lock:
            self._forget_idle(now)
            dialogue = self._dialogues.get(where)
            if dialogue is not None and dialogue.repeats(key, incoming, now):
                return None
            if incoming.dialled or dialogue is None:
                opened = f"{time.time_ns()}" if incoming.dialled else ""
                digest = self._redact(f"{settings.label}|{incoming.session_key}|{incoming.phone}|{opened}")
                dialogue = _Dialogue(f"smpp-{digest[:24]}", now)
                self._dialogues[where] = dialogue
            dialogue.typed = dialogue.typed or not incoming.dialled
            dialogue.touched = now
            self._dialogues.move_to_end(where)
            dialogue.seen = {k: until for k, until in dialogue.seen.items() if until >= now}
            dialogue.seen[key] = now + window
            return dialogue

    def _forget_idle(self, now: float) -> None:
        """Drop the sessions untouched for SESSION_LIFETIME (or the oldest, past MAX_REMEMBERED)."""
        dialogues = self._dialogues
        while dialogues and (
            len(dialogues) > MAX_REMEMBERED or now - next(iter(dialogues.values())).touched > SESSION_LIFETIME
        ):
            dialogues.popitem(last=False)
