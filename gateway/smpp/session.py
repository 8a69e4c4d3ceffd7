"""One bound SMPP connection: it reads PDUs on its own thread and sends requests within a window.

The connector owns the sessions and decides what a `deliver_sm` means; a session only frames,
numbers, answers the protocol's own housekeeping (`enquire_link`, `unbind`), nacks what it cannot
read, and tells the connector when it is gone. A PDU it cannot read is answered and logged, and
the session goes on: one bad PDU must not cut every other phone's session.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import socket
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from config import SmppLink
from gateway.smpp import codec

log = logging.getLogger(__name__)

OnResponse = Callable[[Any | None], None]  # the response PDU, or None if the bind died first


class BindFailed(ConnectionError):
    """The gateway refused the bind or could not be reached; the message says which."""


@dataclass
class _Pending:
    name: str
    sent_at: float
    on_response: OnResponse | None
    done: threading.Event = field(default_factory=threading.Event)
    response: Any | None = None


class Session:
    """A TCP (or TLS) connection bound as `bind_transceiver`, `bind_receiver` or `bind_transmitter`."""

    def __init__(
        self,
        link: SmppLink,
        bind: str,
        on_request: Callable[[Session, Any], None],
        on_closed: Callable[[Session], None],
    ) -> None:
        self.link = link
        self.bind = bind
        self.receives = bind in ("bind_transceiver", "bind_receiver")
        self.transmits = bind in ("bind_transceiver", "bind_transmitter")
        self._on_request = on_request
        self._on_closed = on_closed
        self._sock: socket.socket | None = None
        self._send_lock = threading.Lock()
        self._pending: dict[int, _Pending] = {}
        self._pending_lock = threading.Lock()
        self._window = threading.BoundedSemaphore(link.window)
        self._numbers = itertools.count(1)
        self._closed = threading.Event()
        self._last_seen = time.monotonic()
        self._leaving = False  # we unbind: the gateway closing the connection is expected

    @property
    def alive(self) -> bool:
        return self._sock is not None and not self._closed.is_set()

    def open(self) -> None:
        """Connect and bind; on success the reader and keep-alive threads run until `close`."""
        try:
            raw = socket.create_connection(
                (self.link.host, self.link.port), timeout=self.link.response_timeout
            )
            # A screen is one small PDU: sent at once, not held back waiting for the peer's ACK
            # (Nagle's algorithm against a delayed ACK cost 40 ms a step).
            raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if self.link.tls:
                raw = ssl.create_default_context().wrap_socket(raw, server_hostname=self.link.host)
        except OSError as exc:
            raise BindFailed(f"{self.link.label}: cannot connect ({exc.__class__.__name__})") from None
        self._sock = raw
        try:
            self._write(
                codec.encode(
                    self.bind,
                    self._next_number(),
                    system_id=self.link.system_id,
                    password=self.link.password,
                    system_type=self.link.system_type,
                    interface_version=0x34,
                )
            )
            response = codec.decode(self._read_pdu())
        except (OSError, ConnectionError, codec.MalformedPdu) as exc:
            self._drop()
            raise BindFailed(f"{self.link.label}: {self.bind} got no answer ({exc})") from None
        if response.command != f"{self.bind}_resp" or response.status != codec.ROK:
            self._drop()
            raise BindFailed(
                f"{self.link.label}: {self.bind} refused ({response.command}, status 0x{response.status:08x})"
            )
        raw.settimeout(0.5)
        log.info("smpp %s: bound (%s)", self.link.label, self.bind)
        threading.Thread(target=self._read_loop, name=f"smpp-read-{self.link.label}", daemon=True).start()
        threading.Thread(target=self._keep_alive, name=f"smpp-alive-{self.link.label}", daemon=True).start()

    def request(self, name: str, on_response: OnResponse | None = None, **fields: Any) -> _Pending:
        """Send a request once the window has room; `on_response` gets its response (or None).

        Raises `ConnectionError` only when the session died before the request could be sent.
        """
        while not self._window.acquire(timeout=0.5):
            if not self.alive:
                raise ConnectionError(f"{self.link.label}: session closed")
        number = self._next_number()
        pending = _Pending(name, time.monotonic(), on_response)
        with self._pending_lock:
            self._pending[number] = pending
        try:
            self._write(codec.encode(name, number, **fields))
        except (OSError, ConnectionError):
            # Registered already: `on_response` hears of the loss (None), once, as for any request
            # pending when a bind dies; raising as well would have the caller retry it a second time.
            self._settle(number, None)
            self.close()
        return pending

    def respond(self, name: str, sequence: int, status: int = codec.ROK, **fields: Any) -> bool:
        """Answer a request of the gateway; False when the bind is already gone."""
        try:
            self._write(codec.encode(name, sequence, status=status, **fields))
            return True
        except (OSError, ConnectionError):
            self.close()
            return False

    def unbind(self) -> None:
        """Say goodbye, then close; a gateway that does not answer is closed on anyway."""
        self._leaving = True
        if self.alive:
            with contextlib.suppress(ConnectionError):
                self.request("unbind").done.wait(2)
        self.close()

    def close(self) -> None:
        """Close once; every pending request is settled with None so that no one waits for it."""
        if self._closed.is_set():
            return
        self._closed.set()
        self._drop()
        with self._pending_lock:
            numbers = list(self._pending)
        for number in numbers:
            self._settle(number, None)
        log.log(
            logging.INFO if self._leaving else logging.WARNING,
            "smpp %s: connection closed (%s)",
            self.link.label,
            self.bind,
        )
        self._on_closed(self)

    def _next_number(self) -> int:
        return next(self._numbers) % 0x7FFFFFFF or next(self._numbers)

    def _write(self, data: bytes) -> None:
        sock = self._sock
        if sock is None:
            raise ConnectionError("not connected")
        with self._send_lock:
            sock.sendall(data)

    def _drop(self) -> None:
        sock, self._sock = self._sock, None
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.close()

    def _read_exact(self, size: int) -> bytes:
        chunks, got = [], 0
        while got < size:
            sock = self._sock
            if sock is None:
                raise ConnectionError("closed")
            try:
                chunk = sock.recv(size - got)
            except TimeoutError:
                if self._closed.is_set():
                    raise ConnectionError("closed") from None
                continue
            if not chunk:
                raise ConnectionError("the gateway closed the connection")
            chunks.append(chunk)
            got += len(chunk)
        return b"".join(chunks)

    def _read_pdu(self) -> bytes:
        head = self._read_exact(4)
        length = int.from_bytes(head, "big")
        if not codec.HEADER <= length <= codec.MAX_PDU:
            # The stream cannot be re-synchronised past a wrong length: nack it and bind again.
            rest = self._read_exact(12) if length >= codec.HEADER else b""
            sequence = codec.header(head + rest)[3] if rest else 0
            self.respond("generic_nack", sequence, status=codec.RINVCMDLEN)
            raise ConnectionError(f"command_length {length} is impossible")
        return head + self._read_exact(length - 4)

    def _read_loop(self) -> None:
        try:
            while not self._closed.is_set():
                raw = self._read_pdu()
                self._last_seen = time.monotonic()
                self._dispatch(raw)
        except (OSError, ConnectionError) as exc:
            if not self._closed.is_set() and not self._leaving:
                log.warning("smpp %s: read failed (%s)", self.link.label, exc)
        finally:
            self.close()

    def _dispatch(self, raw: bytes) -> None:
        try:
            pdu = codec.decode(raw)
        except codec.MalformedPdu as exc:
            log.warning("smpp %s: malformed PDU nacked: %s", self.link.label, exc)
            if not exc.command_id & 0x80000000:
                self.respond(codec.nack_for(exc.command_id), exc.sequence, status=exc.status)
            return
        if pdu.command == "generic_nack":
            log.warning("smpp %s: generic_nack 0x%08x for #%d", self.link.label, pdu.status, pdu.sequence)
            self._settle(pdu.sequence, pdu)
        elif pdu.is_response():
            if not self._settle(pdu.sequence, pdu):
                log.warning(
                    "smpp %s: %s #%d answers nothing we sent", self.link.label, pdu.command, pdu.sequence
                )
        elif pdu.command == "enquire_link":
            self.respond("enquire_link_resp", pdu.sequence)
        elif pdu.command == "unbind":
            self.respond("unbind_resp", pdu.sequence)
            self.close()
        elif pdu.command in ("deliver_sm", "data_sm") and self.receives:
            self._on_request(self, pdu)
        elif pdu.command == "alert_notification":
            log.info("smpp %s: alert_notification ignored", self.link.label)
        else:
            log.warning("smpp %s: unexpected %s nacked", self.link.label, pdu.command)
            self.respond("generic_nack", pdu.sequence, status=codec.RINVCMDID)

    def _settle(self, number: int, response: Any | None) -> bool:
        with self._pending_lock:
            pending = self._pending.pop(number, None)
        if pending is None:
            return False
        self._window.release()
        pending.response = response
        pending.done.set()
        if pending.on_response is not None:
            try:
                pending.on_response(response)
            except Exception:  # a callback's fault must not stop the reader of every session
                log.exception("smpp %s: handling the response to %s failed", self.link.label, pending.name)
        return True

    def _keep_alive(self) -> None:
        """enquire_link after `enquire_link` seconds of silence; a request unanswered too long kills the bind."""
        while not self._closed.wait(0.25):
            now = time.monotonic()
            with self._pending_lock:
                oldest = min((p.sent_at for p in self._pending.values()), default=now)
            if now - oldest > self.link.response_timeout:
                log.warning("smpp %s: no response in %.0f s, binding again", self.link.label, now - oldest)
                self.close()
                return
            if now - self._last_seen > self.link.enquire_link:
                self._last_seen = now
                try:
                    self.request("enquire_link")
                except ConnectionError:
                    return
