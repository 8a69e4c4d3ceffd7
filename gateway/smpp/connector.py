"""The ESME: takes USSD steps from operator gateways, asks the conversation, sends its screens back.

A step is acknowledged (`deliver_sm_resp`) once the conversation has answered, so a step the
connector never finished is delivered again by the gateway; the same PDU seen again (same phone,
session, dialogue unit, op and input) is acknowledged and not acted on, so it gives one step and
one reply. Phone numbers appear in no log line: sessions are named by a keyed hash.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from config import SmppLink
from gateway.smpp import codec
from gateway.smpp.link import Link, Reply
from gateway.smpp.session import Session
from gateway.smpp.steps import Incoming, UnusablePdu, read_incoming, reply_fields, to_step
from gateway.ussd import Conversation, StepRefused

log = logging.getLogger(__name__)

SESSION_LIFETIME = 3600.0  # a gateway session older than this is forgotten (its number is reused)
MAX_REMEMBERED = 200_000
# How long a PDU is remembered, to recognise it delivered again: a gateway redelivers what it had
# no answer for after a rebind, within its reply time-out. Not longer: its_session_info has one
# octet of session number, which the gateway reuses, and a new dial must not pass for a repeat.
REPEAT_WINDOW_MIN = 60.0


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
        self._seen: OrderedDict[tuple[object, ...], float] = OrderedDict()  # PDU -> until when
        self._open: dict[tuple[str, str, str], tuple[str, float]] = {}
        self._answered: set[tuple[str, str, str]] = set()  # sessions whose dial was answered to
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
        """On the session's reader thread: read the PDU, drop a repeat, hand the step to a worker."""
        response = f"{pdu.command}_resp"
        if self._stopping:
            log.info(
                "smpp %s: stopping; %s #%d left for the gateway to deliver again",
                link.settings.label,
                pdu.command,
                pdu.sequence,
            )
            return
        try:
            incoming = read_incoming(link.settings, pdu)
        except UnusablePdu as exc:
            log.warning("smpp %s: %s #%d nacked: %s", link.settings.label, pdu.command, pdu.sequence, exc)
            session.respond(response, pdu.sequence, status=exc.status)
            return
        key = incoming.dedup_key(link.settings)
        session_key = (link.settings.label, incoming.phone, incoming.session_key)
        with self._lock:
            if not incoming.dialled:
                self._answered.add(session_key)
            elif session_key in self._answered:
                # The phone typed into that session since: this dial opens a new one with the same
                # number (which the gateway reuses), not the old dial delivered again.
                self._answered.discard(session_key)
                self._seen.pop(key, None)
            if len(self._answered) > MAX_REMEMBERED:
                self._answered.clear()
        if not self._first_time(key, max(REPEAT_WINDOW_MIN, 3 * link.settings.reply_timeout)):
            self.duplicates += 1
            log.info(
                "smpp %s: %s #%d is a repeat; acknowledged, not acted on",
                link.settings.label,
                pdu.command,
                pdu.sequence,
            )
            session.respond(response, pdu.sequence)
            return
        # The request's identity for the conversation, which answers a repeat from the saved reply
        # (one a restarted connector no longer remembers); keyed, as it holds the input.
        step_id = self._redact("|".join(str(part) for part in key[2:]))[:20]
        self._pool.submit(self._step, link, session, response, pdu.sequence, incoming, step_id)

    def _step(
        self, link: Link, session: Session, response: str, sequence: int, incoming: Incoming, step_id: str
    ) -> None:
        settings = link.settings
        session_id = self._session_id(settings, incoming)
        step = to_step(settings, incoming, session_id, settings.service_code or self._service_code, step_id)
        try:
            reply = self._conversation(step)
        except StepRefused as exc:
            log.warning("smpp %s: step of %s refused: %s", settings.label, session_id, exc)
            session.respond(response, sequence, status=codec.RX_T_APPN)
            return
        except Exception:  # the conversation ends its own failures politely; this is a bug, and the
            # gateway must still get an answer, or it delivers the step again and again
            log.exception("smpp %s: step of %s failed", settings.label, session_id)
            session.respond(response, sequence, status=codec.RSYSERR)
            return
        session.respond(response, sequence)  # if the bind is gone, the repeat is acknowledged then
        if reply.end:  # the session is over: its number may open another, whose PDUs are new
            with self._lock:
                self._open.pop((settings.label, incoming.phone, incoming.session_key), None)
                for seen in [k for k in self._seen if k[:2] == (settings.label, incoming.phone)]:
                    if _session_of(seen) == incoming.session_key:
                        del self._seen[seen]
        deadline = incoming.received_at + settings.reply_timeout
        link.send_reply(Reply(reply_fields(settings, incoming, reply), session_id, deadline))

    def _first_time(self, key: tuple[object, ...], window: float) -> bool:
        """Whether this PDU is new, rather than one delivered again within `window` seconds."""
        now = time.monotonic()
        with self._lock:
            while self._seen and (len(self._seen) > MAX_REMEMBERED or next(iter(self._seen.values())) < now):
                self._seen.popitem(last=False)
            if self._seen.get(key, 0.0) >= now:
                return False
            self._seen.pop(key, None)  # re-inserted last: the dict stays in expiry order
            self._seen[key] = now + window
            return True

    def _session_id(self, settings: SmppLink, incoming: Incoming) -> str:
        """A dial opens a new session id; answers find it (after a restart, one derived alike)."""
        key = (settings.label, incoming.phone, incoming.session_key)
        now = time.monotonic()
        with self._lock:
            known = self._open.get(key)
            if incoming.dialled or known is None or now - known[1] > SESSION_LIFETIME:
                opened = f"{time.time_ns()}" if incoming.dialled else ""
                digest = self._redact(f"{settings.label}|{incoming.session_key}|{incoming.phone}|{opened}")
                known = (f"smpp-{digest[:24]}", now)
            self._open[key] = (known[0], now)
            if len(self._open) > MAX_REMEMBERED:
                self._open = {k: v for k, v in self._open.items() if now - v[1] < SESSION_LIFETIME}
            return known[0]


def _session_of(key: tuple[object, ...]) -> str:
    """The session a remembered PDU belongs to, as `Incoming.session_key` names it."""
    info = key[2]
    return str(info >> 8) if isinstance(info, int) else info.hex() if isinstance(info, bytes) else ""
