"""A local operator USSD gateway: an SMSC that Sira's SMPP connector binds to, on smpplib's codec.

A test or a person plays the phones: `dial` opens a USSD session (a `deliver_sm` with
`ussd_service_op` PSSR indication), `answer` types into it (USSR confirm), and every screen the
connector sends back (`submit_sm`) is recorded per session. Faults on demand: throttle the next
submits, drop every bind (unacknowledged steps are delivered again after the rebind, as an SMSC
does), send raw bytes, and a reply time-out after which a session is closed and a late screen is
refused and recorded.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import socket
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from gateway.smpp import codec
from gateway.smpp.codec import UssdOp

log = logging.getLogger(__name__)

RDELIVERYFAILURE = 0xFE
RINVDSTADR = 0x0B


@dataclass
class Screen:
    text: str
    end: bool
    op: int
    at: float


@dataclass
class UssdSession:
    """One phone's USSD session as the gateway sees it."""

    number: int
    phone: str
    dialogue: int = 0
    screens: list[Screen] = field(default_factory=list)
    late: list[Screen] = field(default_factory=list)
    waiting_since: float | None = None
    ended: bool = False

    def session_info(self) -> int:
        """its_session_info: octet 1 the session number, octet 2 the dialogue unit (bits 7-1)."""
        return (self.number << 8) | ((self.dialogue & 0x7F) << 1)

    def timed_out(self, reply_timeout: float) -> bool:
        return self.waiting_since is not None and time.monotonic() - self.waiting_since > reply_timeout


class _Esme:
    """One bound connection from the connector."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.bind = ""
        self.lock = threading.Lock()
        self.numbers = itertools.count(1)
        self.unacked: dict[int, tuple[bytes, int | None]] = {}  # sequence -> (fields, session)
        self.alive = True

    @property
    def receives(self) -> bool:
        return self.bind in ("bind_transceiver", "bind_receiver")

    def send(self, data: bytes) -> None:
        with self.lock:
            self.sock.sendall(data)


class UssdGatewayEmulator:
    """The gateway on (host, port); `start()` returns the port (0 picks a free one)."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        system_id: str = "sira",
        password: str = "sira",
        short_code: str = "7472",
        service_code: str = "*384*7472#",
        reply_timeout: float = 20.0,
        data_coding: int = codec.DataCoding.GSM7,
    ) -> None:
        self.host, self.port = host, port
        self.system_id, self.password = system_id, password
        self.short_code, self.service_code = short_code, service_code
        self.reply_timeout = reply_timeout
        self.data_coding = data_coding
        self.sessions: dict[int, UssdSession] = {}
        self.binds = 0
        self.enquire_links = 0
        self.responses: list[tuple[str, int, int]] = []  # (command, status, sequence) from the ESME
        self.throttled = 0
        self._throttle_next = 0
        self._drop_after_deliver = False
        self._numbers = itertools.count(1)
        self._esmes: list[_Esme] = []
        self._undelivered: deque[tuple[dict[str, Any], int | None]] = deque()
        self._lock = threading.Condition()
        self._listener: socket.socket | None = None
        self._stopped = threading.Event()

    # -- life -------------------------------------------------------------------------------

    def start(self) -> int:
        listener = socket.create_server((self.host, self.port))
        listener.settimeout(0.2)
        self._listener = listener
        self.port = listener.getsockname()[1]
        threading.Thread(target=self._accept_loop, name="smsc-accept", daemon=True).start()
        return self.port

    def stop(self) -> None:
        self._stopped.set()
        self.drop_binds()
        if self._listener is not None:
            self._listener.close()

    # -- the phones ---------------------------------------------------------------------------

    def dial(self, phone: str, dialled: str | None = None) -> int:
        """A phone dials (`dialled`, default the service code); returns the session number."""
        with self._lock:
            number = next(self._numbers) % 256 or next(self._numbers) % 256
            session = UssdSession(number, phone)
            self.sessions[number] = session
        self._from_phone(session, dialled or self.service_code, UssdOp.PSSR_INDICATION)
        return number

    def answer(self, number: int, text: str) -> None:
        """The phone of session `number` types `text` and presses send."""
        session = self.sessions[number]
        session.dialogue += 1
        self._from_phone(session, text, UssdOp.USSR_CONFIRM)

    def wait_screen(self, number: int, count: int, timeout: float = 5.0) -> Screen:
        """The `count`-th screen (1-based) of session `number`, once it has come."""
        deadline = time.monotonic() + timeout
        with self._lock:
            while len(self.sessions[number].screens) < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"session {number}: screen {count} did not come in {timeout} s")
                self._lock.wait(left)
            return self.sessions[number].screens[count - 1]

    def wait_for(self, predicate: Callable[[], bool], timeout: float = 5.0) -> bool:
        """Wait until `predicate()` holds (binds, responses...); False at the time-out."""
        deadline = time.monotonic() + timeout
        with self._lock:
            while not predicate():
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._lock.wait(min(left, 0.1))
            return True

    # -- faults -------------------------------------------------------------------------------

    def throttle_next(self, count: int) -> None:
        """The next `count` submit_sm are answered ESME_RTHROTTLED."""
        self._throttle_next = count

    def drop_after_next_deliver(self) -> None:
        """Cut the bind right after the next deliver_sm leaves, before its response can come."""
        self._drop_after_deliver = True

    def drop_binds(self) -> None:
        """Close every connection at once, as a gateway restart does."""
        for esme in list(self._esmes):
            self._close(esme)

    def send_raw(self, data: bytes) -> None:
        """Bytes as they are, to a receiving bind (a malformed PDU, a vendor's oddity)."""
        esme = self._receiver()
        if esme is None:
            raise ConnectionError("no bind to send to")
        esme.send(data)

    @property
    def bound(self) -> bool:
        """A connector is bound and can receive steps."""
        return self._receiver() is not None

    def next_sequence(self) -> int:
        return next(self._numbers) + 10_000

    # -- inside -------------------------------------------------------------------------------

    def _from_phone(self, session: UssdSession, text: str, op: int) -> None:
        session.waiting_since = time.monotonic()
        fields = {
            "service_type": "USSD",
            "source_addr_ton": 1,
            "source_addr_npi": 1,
            "source_addr": session.phone.lstrip("+"),
            "destination_addr": self.short_code,
            "data_coding": self.data_coding,
            "short_message": codec.bytes_of(text, self.data_coding),
            "ussd_service_op": int(op),
            "its_session_info": session.session_info(),
        }
        self._deliver(fields, session.number)

    def _receiver(self) -> _Esme | None:
        return next((e for e in self._esmes if e.alive and e.receives), None)

    def _deliver(self, fields: dict[str, Any], number: int | None) -> None:
        esme = self._receiver()
        if esme is None:
            self._undelivered.append((fields, number))
            return
        sequence = next(esme.numbers)
        esme.unacked[sequence] = (fields, number)  # type: ignore[assignment]
        try:
            esme.send(codec.encode("deliver_sm", sequence, **fields))
        except OSError:
            self._close(esme)
            return
        if self._drop_after_deliver:
            self._drop_after_deliver = False
            self._close(esme)

    def _accept_loop(self) -> None:
        assert self._listener is not None
        while not self._stopped.is_set():
            try:
                sock, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            esme = _Esme(sock)
            self._esmes.append(esme)
            threading.Thread(target=self._serve, args=(esme,), name="smsc-esme", daemon=True).start()

    def _close(self, esme: _Esme) -> None:
        with self._lock:
            if not esme.alive:
                return
            esme.alive = False
            if esme in self._esmes:
                self._esmes.remove(esme)
            # What the connector never acknowledged is delivered again on the next bind.
            self._undelivered.extendleft(reversed(list(esme.unacked.values())))  # type: ignore[arg-type]
            esme.unacked.clear()
            self._lock.notify_all()
        with contextlib.suppress(OSError):
            esme.sock.shutdown(socket.SHUT_RDWR)
        esme.sock.close()

    def _read(self, esme: _Esme, size: int) -> bytes:
        chunks, got = [], 0
        while got < size:
            chunk = esme.sock.recv(size - got)
            if not chunk:
                raise ConnectionError("closed")
            chunks.append(chunk)
            got += len(chunk)
        return b"".join(chunks)

    def _serve(self, esme: _Esme) -> None:
        try:
            while esme.alive:
                head = self._read(esme, 4)
                length = int.from_bytes(head, "big")
                if not codec.HEADER <= length <= codec.MAX_PDU:
                    raise ConnectionError(f"impossible command_length {length}")
                raw = head + self._read(esme, length - 4)
                try:
                    pdu = codec.decode(raw)
                except codec.MalformedPdu as exc:
                    log.warning("smsc: malformed PDU from the ESME: %s", exc)
                    esme.send(codec.encode(codec.nack_for(exc.command_id), exc.sequence, status=exc.status))
                    continue
                self._handle(esme, pdu)
        except (OSError, ConnectionError):
            pass
        finally:
            self._close(esme)

    def _handle(self, esme: _Esme, pdu: Any) -> None:
        name = pdu.command
        if name.startswith("bind_"):
            ok = _text(pdu.system_id) == self.system_id and _text(pdu.password) == self.password
            status = codec.ROK if ok else codec.RINVPASWD
            if ok:  # counted before it is answered: whoever sees the answer sees the count
                with self._lock:
                    esme.bind = name
                    self.binds += 1
                    self._lock.notify_all()
            esme.send(codec.encode(f"{name}_resp", pdu.sequence, status=status, system_id="SIRA-EMU"))
            if not ok:
                raise ConnectionError("wrong credentials")
            self._flush_undelivered()
        elif name == "enquire_link":
            esme.send(codec.encode("enquire_link_resp", pdu.sequence))
            with self._lock:
                self.enquire_links += 1
                self._lock.notify_all()
        elif name == "unbind":
            esme.send(codec.encode("unbind_resp", pdu.sequence))
            raise ConnectionError("unbound")
        elif name == "submit_sm":
            esme.send(codec.encode("submit_sm_resp", pdu.sequence, status=self._screen(pdu), message_id=""))
        elif pdu.is_response():
            with self._lock:
                esme.unacked.pop(pdu.sequence, None)
                self.responses.append((name, pdu.status, pdu.sequence))
                self._lock.notify_all()
        else:
            esme.send(codec.encode("generic_nack", pdu.sequence, status=codec.RINVCMDID))

    def _flush_undelivered(self) -> None:
        while self._undelivered and self._receiver() is not None:
            fields, number = self._undelivered.popleft()
            self._deliver(fields, number)

    def _screen(self, pdu: Any) -> int:
        """Record a submit_sm as its session's screen; the status to answer it with."""
        if self._throttle_next > 0:
            self._throttle_next -= 1
            self.throttled += 1
            return codec.RTHROTTLED
        info = pdu.its_session_info
        with self._lock:
            session = self.sessions.get(info >> 8) if info is not None else None
            if session is None:
                return RINVDSTADR
            raw = pdu.short_message or getattr(pdu, "message_payload", None) or b""
            screen = Screen(
                codec.text_of(raw, pdu.data_coding or 0),
                pdu.ussd_service_op != UssdOp.USSR_REQUEST,
                pdu.ussd_service_op,
                time.monotonic(),
            )
            if session.ended or session.timed_out(self.reply_timeout):
                session.ended = True
                session.late.append(screen)
                self._lock.notify_all()
                return RDELIVERYFAILURE
            session.screens.append(screen)
            session.waiting_since = None
            session.ended = screen.end
            self._lock.notify_all()
            return codec.ROK


def _text(value: bytes | str | None) -> str:
    return value.decode("latin-1") if isinstance(value, bytes) else (value or "")
