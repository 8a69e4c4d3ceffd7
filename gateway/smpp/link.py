"""One operator gateway kept bound: reconnects with backoff, and sends our replies through it.

Replies wait in the link's outbox, not in a connection, so that a bind that drops between a step
and its reply loses nothing: the reply goes out on the next bind. A reply the gateway throttles
waits and goes again; one past the gateway's reply time-out is dropped (the phone's session is
closed there, and a late screen could land on the next one), and logged.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any

from config import SmppLink
from gateway.smpp import codec
from gateway.smpp.session import BindFailed, Session
from infra.metrics import SMPP_REPLIES

log = logging.getLogger(__name__)

MAX_THROTTLE_WAIT = 30.0


@dataclass
class Reply:
    """A submit_sm to send, for which session, and until when the gateway still wants it."""

    fields: dict[str, Any]
    session_id: str
    deadline: float  # time.monotonic()
    on_accepted: Callable[[Session], None] | None = None  # told which connection the gateway took it on


class Link:
    """Binds to one gateway (one transceiver, or a receiver and a transmitter) and stays bound."""

    def __init__(self, settings: SmppLink, on_request: Callable[[Link, Session, Any], None]) -> None:
        self.settings = settings
        self._on_request = on_request
        self._sessions: list[Session] = []
        self._outbox: deque[Reply] = deque()
        self._wake = threading.Condition()
        self._stop = threading.Event()
        self._lost = threading.Event()
        self.bound = threading.Event()
        self.binds = 0  # successful binds so far (a reconnect adds one)
        self.late_replies = 0
        self._paused_until = 0.0
        self._throttle_wait = settings.throttle_wait
        self._in_flight = 0  # replies sent and not yet answered by the gateway
        self._threads: list[threading.Thread] = []

    def start(self) -> None:
        for target, name in ((self._keep_bound, "bind"), (self._send_loop, "send")):
            thread = threading.Thread(target=target, name=f"smpp-{name}-{self.settings.label}", daemon=True)
            thread.start()
            self._threads.append(thread)

    def stop(self) -> None:
        self._stop.set()
        with self._wake:
            self._wake.notify_all()
        for session in list(self._sessions):
            session.unbind()
        for thread in self._threads:
            thread.join(timeout=5)

    def drain(self, deadline: float) -> bool:
        """Wait until every reply has gone and been answered (or `deadline`, a monotonic time)."""
        with self._wake:
            while self._outbox or self._in_flight:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._wake.wait(min(left, 0.1))
            return True

    def send_reply(self, reply: Reply) -> None:
        with self._wake:
            self._outbox.append(reply)
            self._wake.notify_all()

    def _binds(self) -> tuple[str, ...]:
        if self.settings.bind == "trx":
            return ("bind_transceiver",)
        return ("bind_receiver", "bind_transmitter")

    def _keep_bound(self) -> None:
        wait = self.settings.reconnect_min
        while not self._stop.is_set():
            self._lost.clear()
            sessions: list[Session] = []
            try:
                for bind in self._binds():
                    session = Session(self.settings, bind, self._handle, self._closed)
                    session.open()
                    sessions.append(session)
            except BindFailed as exc:
                for session in sessions:
                    session.close()
                log.warning("smpp %s: %s; binding again in %.1f s", self.settings.label, exc, wait)
                self._stop.wait(wait)
                wait = min(wait * 2, self.settings.reconnect_max)
                continue
            wait = self.settings.reconnect_min
            self._sessions = sessions
            self.binds += 1
            self.bound.set()
            with self._wake:
                self._wake.notify_all()
            while not self._stop.is_set() and not self._lost.wait(0.25):
                pass
            self.bound.clear()
            for session in sessions:
                session.close()
            self._sessions = []
            if not self._stop.is_set():
                self._stop.wait(self.settings.reconnect_min)

    def _handle(self, session: Session, pdu: Any) -> None:
        self._on_request(self, session, pdu)

    def _closed(self, session: Session) -> None:
        self._lost.set()
        with self._wake:
            self._wake.notify_all()

    def _transmitter(self) -> Session | None:
        return next((s for s in self._sessions if s.transmits and s.alive), None)

    def _send_loop(self) -> None:
        while not self._stop.is_set():
            with self._wake:
                session = self._transmitter()
                if not self._outbox or session is None or time.monotonic() < self._paused_until:
                    self._wake.wait(0.1)
                    continue
                reply = self._outbox.popleft()
            if time.monotonic() > reply.deadline:
                self.late_replies += 1
                SMPP_REPLIES.labels(self.settings.label, "late").inc()
                log.warning(
                    "smpp %s: reply to %s dropped: past the gateway's %.0f s reply time-out",
                    self.settings.label,
                    reply.session_id,
                    self.settings.reply_timeout,
                )
                continue
            with self._wake:
                self._in_flight += 1
            try:
                session.request("submit_sm", partial(self._sent, reply, session), **reply.fields)
            except ConnectionError:
                self._requeue(reply, answered=True)

    def _sent(self, reply: Reply, session: Session, response: Any | None) -> None:
        with self._wake:
            self._in_flight -= 1
            self._wake.notify_all()
        label = self.settings.label
        if response is None:
            SMPP_REPLIES.labels(label, "lost").inc()
            log.warning(
                "smpp %s: bind lost before the reply to %s was answered; sending it again",
                self.settings.label,
                reply.session_id,
            )
            self._requeue(reply)
        elif response.status == codec.RTHROTTLED:
            SMPP_REPLIES.labels(label, "throttled").inc()
            with self._wake:
                self._paused_until = time.monotonic() + self._throttle_wait
                log.warning("smpp %s: throttled; waiting %.1f s", self.settings.label, self._throttle_wait)
                self._throttle_wait = min(self._throttle_wait * 2, MAX_THROTTLE_WAIT)
            self._requeue(reply)
        elif response.status != codec.ROK:
            SMPP_REPLIES.labels(label, "refused").inc()
            log.warning(
                "smpp %s: the gateway refused the reply to %s (%s 0x%08x)",
                self.settings.label,
                reply.session_id,
                response.command,
                response.status,
            )
        else:
            SMPP_REPLIES.labels(label, "accepted").inc()
            self._throttle_wait = self.settings.throttle_wait
            if reply.on_accepted is not None:
                reply.on_accepted(session)

    def _requeue(self, reply: Reply, *, answered: bool = False) -> None:
        with self._wake:
            if answered:  # sending failed before the request was registered
                self._in_flight -= 1
            self._outbox.appendleft(reply)
            self._wake.notify_all()
