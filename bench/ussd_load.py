"""Load driver for `bench.ussd_steps`: simulated phones walking the registration journey.

It runs in its own process (`python -m bench.ussd_load < plan.json > result.json`) so that its
CPU is scheduled like any other client's and not mistaken for the server's. It speaks raw
HTTP/1.1 with keep-alive over asyncio streams: on a 2-core machine, requests and a thread per
phone would spend more CPU on the client than the servers spend answering.

Each phone dials with a new sessionId and its own number, sends the growing `*`-joined `text`
history a gateway sends, and checks every reply; a segment counts the steps that completed in
its measuring window and the time each step took, as the phone saw it.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import random
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from gateway.smpp import codec
from gateway.smpp.codec import UssdOp

HOST = "127.0.0.1"
SERVICE_CODE = "*384*7472#"
SHORT_CODE = "7472"  # where an operator's gateway says the dial went (destination_addr)
NETWORK_CODE = "61001"
LANGUAGE_ANSWER = "1"  # Français, on the first dial only
REGISTER_LABEL = "S'inscrire"  # on the first screen: the language is known; its number is read, menus grow
UPDATE_LABEL = "Modifier mon inscription"  # the same option once the phone is registered
REGISTERED_LABEL = "Vous etes inscrit"  # the journey's last screen: registered, on to the need (CON)
# After Register: first name, woman, 26 to 35, next page of regions, Bandiagara, Libya, 3 to 12 months, I agree.
AFTER_REGISTER = ("Awa", "2", "3", "98", "20", "1", "2", "1")
REGISTER = ""  # stands for the Register option's number in a list of answers
REQUEST_TIMEOUT = 10.0
NUMBERS = 10**7  # the block every benchmark dials in (+2237XXXXXXX), through the local emulator only


def bench_phone(n: int) -> str:
    """The n-th made-up number of the benchmarks' block: no bench sends to a real gateway."""
    return f"+2237{n % NUMBERS:07d}"


PROBE_PHONE = bench_phone(NUMBERS - 1)


def register_choice(menu: str) -> str | None:
    """The number of the Register option on a main-menu screen ("3 S'inscrire" gives "3")."""
    for line in menu.splitlines():
        number, _, label = line.partition(" ")
        if number.isdigit() and (REGISTER_LABEL in label or UPDATE_LABEL in label):
            return number
    return None


def answers(language_known: bool) -> tuple[str, ...]:
    """The registration journey's answers, REGISTER standing for the menu number."""
    return (*(() if language_known else (LANGUAGE_ANSWER,)), REGISTER, *AFTER_REGISTER)


@dataclass(frozen=True)
class Segment:
    """One run of N phones against one server, with a warm-up and a measuring window."""

    phase: str
    target: str  # "app" follows the app's screens; "bare" replays the same forms blindly
    port: int
    concurrency: int
    warmup: float
    duration: float
    think: float
    jitter: float
    number_base: int
    seed: int
    round: int = 0


@dataclass
class Tally:
    """What a segment saw; latencies are of successful steps started inside the window."""

    phase: str
    target: str
    round: int
    window_s: float
    steps_in_window: int = 0
    responses: int = 0
    sessions_done: int = 0
    non_200: int = 0
    bad_reply: int = 0
    transport: int = 0
    off_journey: int = 0
    examples: list[str] = field(default_factory=list)
    latencies_ms: list[float] = field(default_factory=list)
    cpu_s: dict[str, float] = field(default_factory=dict)  # CPU seconds per process group in the window

    def note(self, what: str) -> None:
        """Keep a few examples of what went wrong, for the report."""
        if len(self.examples) < 5:
            self.examples.append(what[:200])

    @property
    def errors(self) -> int:
        return self.non_200 + self.bad_reply + self.transport + self.off_journey


class HttpConnection:
    """One keep-alive HTTP/1.1 connection that reopens when the server has closed it."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None
        self.head = (
            f"POST /ussd HTTP/1.1\r\nHost: {host}:{port}\r\n"
            "Content-Type: application/x-www-form-urlencoded\r\n"
        ).encode()

    async def post(self, body: bytes) -> tuple[int, str]:
        """POST /ussd; a reused connection the server closed while idle is retried once, fresh."""
        for attempt in range(2):
            reused = self.writer is not None
            if self.writer is None:
                self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
            try:
                self.writer.write(self.head + b"Content-Length: %d\r\n\r\n" % len(body) + body)
                await self.writer.drain()
                return await self._response()
            except (ConnectionError, asyncio.IncompleteReadError) as exc:
                self.close()
                nothing_read = not getattr(exc, "partial", b"")
                if not (reused and nothing_read and attempt == 0):
                    raise
        raise AssertionError("unreachable")

    async def _response(self) -> tuple[int, str]:
        assert self.reader is not None
        head = (await self.reader.readuntil(b"\r\n\r\n")).decode("latin-1").split("\r\n")
        status = int(head[0].split(" ", 2)[1])
        headers: dict[str, str] = {}
        for line in head[1:]:
            name, _, value = line.partition(":")
            if name:
                headers[name.strip().lower()] = value.strip().lower()
        if "content-length" in headers:
            body = await self.reader.readexactly(int(headers["content-length"]))
        elif headers.get("transfer-encoding") == "chunked":
            body = await self._chunked()
        else:
            body = await self.reader.read()
            headers["connection"] = "close"
        if headers.get("connection") == "close":
            self.close()
        return status, body.decode("utf-8", "replace")

    async def _chunked(self) -> bytes:
        assert self.reader is not None
        parts: list[bytes] = []
        while True:
            size = int((await self.reader.readuntil(b"\r\n")).split(b";")[0], 16)
            if size == 0:
                await self.reader.readuntil(b"\r\n")
                return b"".join(parts)
            parts.append(await self.reader.readexactly(size))
            await self.reader.readexactly(2)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None


@dataclass(frozen=True)
class Watch:
    """Whose CPU to account for: each server's process group, and the database's name."""

    pgids: dict[str, int] = field(default_factory=dict)  # "app"/"bare": the gunicorn master's group
    db_name: str | None = None


def cpu_snapshot(watch: Watch) -> dict[str, float]:
    """CPU seconds used so far by the machine and by each party to the benchmark (Linux /proc).

    The machine is shared (other people's tests, services): what is not ours is reported as
    `other`, so a noisy run can be recognised rather than mistaken for a slow app.
    """
    hz = os.sysconf("SC_CLK_TCK")
    try:
        fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
    except OSError:
        return {}
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(x) for x in fields[:8])
    used = {"machine": (user + nice + system + irq + softirq + steal) / hz}
    groups = {pgid: name for name, pgid in watch.pgids.items()}
    me = os.getpid()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        after = stat.rsplit(")", 1)[1].split()
        pgrp, ticks = int(after[2]), int(after[11]) + int(after[12])
        if int(entry.name) == me:
            group = "driver"
        elif pgrp in groups:
            group = groups[pgrp]
        elif cmdline.startswith("postgres") and watch.db_name:
            # our database's backends, and the shared background processes our commits keep busy
            if watch.db_name in cmdline or "(" not in cmdline:
                group = "db"
            else:
                continue
        elif cmdline.startswith("redis-server"):
            group = "redis"
        else:
            continue
        used[group] = used.get(group, 0.0) + ticks / hz
    return used


@dataclass(frozen=True)
class Clock:
    """The measuring window, in `time.perf_counter()` seconds."""

    warm: float
    stop: float


class Phone:
    """A handset dialling again and again: the full registration each time, like a gateway relays it."""

    def __init__(self, seg: Segment, index: int, tally: Tally, clock: Clock, register: str) -> None:
        self.seg, self.index, self.tally, self.clock = seg, index, tally, clock
        self.register = register  # for the bare endpoint, which has no menu to read
        self.rng = random.Random(seg.seed * 100_003 + index)
        self.http = HttpConnection(HOST, seg.port)
        self.generation = 0  # a new number after an error, so one failure does not cascade
        self.registered = False
        self.sessions = 0

    @property
    def number(self) -> str:
        return bench_phone(self.seg.number_base + self.generation * self.seg.concurrency + self.index)

    async def run(self) -> None:
        try:
            if self.seg.think:
                await asyncio.sleep(self.rng.uniform(0, self.seg.think * (1 + self.seg.jitter)))
            while time.perf_counter() < self.clock.stop:
                if not await self.session():
                    self.generation += 1
                    self.registered = False
        finally:
            self.http.close()

    async def session(self) -> bool:
        """One dial to registered; False on any error (already counted), True if done or out of time."""
        self.sessions += 1
        tag = f"{self.seg.phase[:3]}{self.seg.round}-{self.seg.target}-{self.index}-{self.sessions}"
        session_id = f"bench-{tag}-{self.rng.getrandbits(32):08x}"
        history: list[str] = []
        reply = await self.step(session_id, history)
        if reply is None:
            return False
        is_app = self.seg.target == "app"
        if is_app and not reply.startswith("CON "):
            return self.off_journey("first screen", reply)
        todo = answers(register_choice(reply) is not None if is_app else self.registered)
        for i, answer in enumerate(todo):
            await self.think()
            if time.perf_counter() >= self.clock.stop:
                return True
            if answer == REGISTER:
                answer = register_choice(reply) if is_app else self.register
                if answer is None:
                    return self.off_journey("no Register option", reply)
            history.append(answer)
            reply = await self.step(session_id, history)
            if reply is None:
                return False
            if is_app and (reply.startswith("END ") or (REGISTERED_LABEL in reply) != (i == len(todo) - 1)):
                return self.off_journey(f"after {'*'.join(history)!r}", reply)
        self.registered = True
        self.tally.sessions_done += 1
        await self.think()
        return True

    async def think(self) -> None:
        if self.seg.think:
            j = self.seg.jitter
            await asyncio.sleep(self.seg.think * self.rng.uniform(1 - j, 1 + j))

    def off_journey(self, where: str, reply: str) -> bool:
        self.tally.off_journey += 1
        self.tally.note(f"off journey {where}: {reply!r}")
        return False

    async def step(self, session_id: str, history: list[str]) -> str | None:
        """Post one step and check the reply; None (and counted) if anything is wrong."""
        form = {
            "sessionId": session_id,
            "serviceCode": SERVICE_CODE,
            "phoneNumber": self.number,
            "networkCode": NETWORK_CODE,
            "text": "*".join(history),
        }
        body = urlencode(form).encode()
        started = time.perf_counter()
        try:
            status, reply = await asyncio.wait_for(self.http.post(body), REQUEST_TIMEOUT)
        except (OSError, asyncio.IncompleteReadError, TimeoutError, ValueError, IndexError) as exc:
            self.http.close()
            self.tally.transport += 1
            self.tally.note(f"transport: {type(exc).__name__}: {exc}")
            return None
        ended = time.perf_counter()
        self.tally.responses += 1
        if status != 200:
            self.tally.non_200 += 1
            self.tally.note(f"HTTP {status}: {reply!r}")
            return None
        if not reply.startswith(("CON ", "END ")):
            self.tally.bad_reply += 1
            self.tally.note(f"reply without CON/END: {reply!r}")
            return None
        if self.clock.warm <= started < self.clock.stop:
            self.tally.latencies_ms.append(round((ended - started) * 1000, 3))
        if self.clock.warm <= ended <= self.clock.stop:
            self.tally.steps_in_window += 1
        return reply


class SmppGateway:
    """The driver's operator USSD gateway: the SMPP connector(s) bind to it, and phones dial through it.

    It speaks SMPP 3.4 as an operator's gateway does (with the product's own codec, which wraps
    smpplib's): a step is a `deliver_sm` with `ussd_service_op` and `its_session_info`, the answer
    the connector's `submit_sm` for the same session. A session sticks to one bind, as an
    operator's dialogue does; sessions are dealt to the binds in turn.
    """

    def __init__(self, port: int) -> None:
        self.port = port
        self.binds: list[asyncio.StreamWriter] = []
        self.waiting: dict[int, tuple[int, asyncio.Future[tuple[str, bool]]]] = {}  # by session number
        self.free = list(range(1, 256))  # its_session_info's first octet: 255 sessions at once
        self.sequence = itertools.count(1)
        self.turn = itertools.count()
        self.bound = asyncio.Event()
        self.expected = 1
        self.server: asyncio.base_events.Server | None = None

    async def start(self, expected_binds: int) -> None:
        self.expected = expected_binds
        self.server = await asyncio.start_server(self._serve, HOST, self.port)

    async def stop(self) -> None:
        """Unbind the connectors (they would bind again) and stop listening."""
        if self.server is not None:
            self.server.close()
        for writer in list(self.binds):
            writer.write(codec.encode("unbind", next(self.sequence)))
            writer.close()
        await asyncio.sleep(0.2)

    async def wait_bound(self, timeout: float = 60.0) -> None:
        await asyncio.wait_for(self.bound.wait(), timeout)

    def open_session(self) -> tuple[int, asyncio.StreamWriter]:
        number = self.free.pop(0)
        return number, self.binds[next(self.turn) % len(self.binds)]

    def close_session(self, number: int) -> None:
        self.waiting.pop(number, None)
        self.free.append(number)

    async def step(self, bind: asyncio.StreamWriter, number: int, dialogue: int, phone: str, text: str,
                   dialled: bool) -> tuple[str, bool]:  # fmt: skip
        """One deliver_sm; the (text, end) of the submit_sm that answers it."""
        future: asyncio.Future[tuple[str, bool]] = asyncio.get_running_loop().create_future()
        info = (number << 8) | ((dialogue & 0x7F) << 1)
        self.waiting[number] = (info, future)
        bind.write(codec.encode(
            "deliver_sm", next(self.sequence), service_type="USSD", source_addr_ton=1, source_addr_npi=1,
            source_addr=phone.lstrip("+"), destination_addr=SHORT_CODE,
            data_coding=0, short_message=codec.bytes_of(text, 0),
            ussd_service_op=int(UssdOp.PSSR_INDICATION if dialled else UssdOp.USSR_CONFIRM),
            its_session_info=info,
        ))  # fmt: skip
        await bind.drain()
        return await future

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readexactly(4)
                raw = head + await reader.readexactly(int.from_bytes(head, "big") - 4)
                self._handle(writer, codec.decode(raw))
        except (asyncio.IncompleteReadError, ConnectionError, codec.MalformedPdu, asyncio.CancelledError):
            pass  # a connector gone, or the driver closing
        finally:
            if writer in self.binds:
                self.binds.remove(writer)
            writer.close()

    def _handle(self, writer: asyncio.StreamWriter, pdu: Any) -> None:
        name = pdu.command
        if name.startswith("bind_"):
            writer.write(codec.encode(f"{name}_resp", pdu.sequence, system_id="BENCH"))
            self.binds.append(writer)
            if len(self.binds) >= self.expected:
                self.bound.set()
        elif name == "enquire_link":
            writer.write(codec.encode("enquire_link_resp", pdu.sequence))
        elif name == "submit_sm":
            writer.write(codec.encode("submit_sm_resp", pdu.sequence, message_id=""))
            # A screen answers the step of the same session number and dialogue unit; a late one for
            # a session the phone has left (its number now another's) answers nothing, as on a gateway.
            info = pdu.its_session_info
            step = self.waiting.get(info >> 8) if info is not None else None
            future = self.waiting.pop(info >> 8)[1] if step is not None and step[0] == info else None
            raw = pdu.short_message or getattr(pdu, "message_payload", None) or b""
            if future is not None and not future.done():
                future.set_result((codec.text_of(raw, pdu.data_coding or 0),
                                   pdu.ussd_service_op != UssdOp.USSR_REQUEST))  # fmt: skip
        elif name == "unbind":
            writer.write(codec.encode("unbind_resp", pdu.sequence))


class SmppPhone(Phone):
    """The same handset and journey, dialling through the operator's gateway instead of AT's HTTP."""

    def __init__(self, seg: Segment, index: int, tally: Tally, clock: Clock, register: str,
                 gateway: SmppGateway) -> None:  # fmt: skip
        super().__init__(seg, index, tally, clock, register)
        self.gateway = gateway
        self.current: tuple[str, int, asyncio.StreamWriter] | None = None
        self.dialogue = 0

    async def run(self) -> None:
        try:
            await super().run()
        finally:
            self._hang_up()

    def _hang_up(self) -> None:
        if self.current is not None:
            self.gateway.close_session(self.current[1])
            self.current = None

    async def step(self, session_id: str, history: list[str]) -> str | None:
        if not history or self.current is None or self.current[0] != session_id:
            self._hang_up()
            number, bind = self.gateway.open_session()
            self.current, self.dialogue = (session_id, number, bind), 0
        _, number, bind = self.current
        text, dialled = (SERVICE_CODE, True) if not history else (history[-1], False)
        if not dialled:
            self.dialogue += 1
        started = time.perf_counter()
        try:
            screen, end = await asyncio.wait_for(
                self.gateway.step(bind, number, self.dialogue, self.number, text, dialled), REQUEST_TIMEOUT
            )
        except (OSError, ConnectionError, TimeoutError) as exc:
            self._hang_up()
            self.tally.transport += 1
            self.tally.note(f"smpp: {type(exc).__name__}: {exc}")
            return None
        ended = time.perf_counter()
        self.tally.responses += 1
        if end:
            self._hang_up()
        if self.clock.warm <= started < self.clock.stop:
            self.tally.latencies_ms.append(round((ended - started) * 1000, 3))
        if self.clock.warm <= ended <= self.clock.stop:
            self.tally.steps_in_window += 1
        return ("END " if end else "CON ") + screen


async def account_cpu(clock: Clock, watch: Watch, tally: Tally) -> None:
    """CPU used by each party over the measuring window (read in a thread: /proc is slow)."""
    loop = asyncio.get_running_loop()
    await asyncio.sleep(max(0.0, clock.warm - time.perf_counter()))
    before = await loop.run_in_executor(None, cpu_snapshot, watch)
    await asyncio.sleep(max(0.0, clock.stop - time.perf_counter()))
    after = await loop.run_in_executor(None, cpu_snapshot, watch)
    tally.cpu_s = {k: round(max(0.0, after[k] - before.get(k, 0.0)), 3) for k in after}


async def learn_register_choice(port: int) -> str:
    """Dial the app once to read which number Register has, so the bare endpoint gets the same forms."""
    http = HttpConnection(HOST, port)
    form = {"sessionId": f"bench-probe-{random.getrandbits(32):08x}", "serviceCode": SERVICE_CODE,
            "phoneNumber": PROBE_PHONE, "networkCode": NETWORK_CODE, "text": ""}  # fmt: skip
    try:
        _, menu = await http.post(urlencode(form).encode())
        if REGISTER_LABEL not in menu:
            _, menu = await http.post(urlencode({**form, "text": LANGUAGE_ANSWER}).encode())
    finally:
        http.close()
    choice = register_choice(menu)
    if choice is None:
        raise SystemExit(f"ussd_load: no {REGISTER_LABEL!r} option on the main menu: {menu!r}")
    return choice


async def run_segment(seg: Segment, watch: Watch, register: str, smpp: SmppGateway | None = None) -> Tally:
    """N phones for warm-up + duration; phones finish their step in flight, then stop."""
    tally = Tally(seg.phase, seg.target, seg.round, seg.duration)
    start = time.perf_counter()
    clock = Clock(warm=start + seg.warmup, stop=start + seg.warmup + seg.duration)
    phones = [
        SmppPhone(seg, i, tally, clock, register, smpp) if seg.target == "smpp" and smpp else
        Phone(seg, i, tally, clock, register)
        for i in range(seg.concurrency)
    ]  # fmt: skip
    accounting = asyncio.create_task(account_cpu(clock, watch, tally))
    tasks = [asyncio.create_task(p.run()) for p in phones]
    _, pending = await asyncio.wait(tasks, timeout=seg.warmup + seg.duration + REQUEST_TIMEOUT + 5)
    for task in pending:
        task.cancel()
    for outcome in await asyncio.gather(*tasks, return_exceptions=True):
        if isinstance(outcome, BaseException) and not isinstance(outcome, asyncio.CancelledError):
            tally.transport += 1
            tally.note(f"driver: {type(outcome).__name__}: {outcome}")
    await accounting
    return tally


def _progress(t: Tally) -> str:
    lat = sorted(t.latencies_ms)
    p99 = lat[min(len(lat) - 1, int(len(lat) * 0.99))] if lat else float("nan")
    return (
        f"  {t.phase:<10} round {t.round} {t.target:<4} {t.steps_in_window / t.window_s:8.0f} steps/s"
        f"  p99 {p99:7.1f} ms  errors {t.errors}"
    )


async def run_plan(segments: list[Segment], watch: Watch, smpp_binds: int = 0) -> list[Tally]:
    app_ports = [seg.port for seg in segments if seg.target == "app"]
    register = await learn_register_choice(app_ports[0]) if app_ports else "1"
    smpp = None
    smpp_ports = [seg.port for seg in segments if seg.target == "smpp"]
    if smpp_ports:  # the connectors bind to us: listen first, then wait for every one of them
        smpp = SmppGateway(smpp_ports[0])
        await smpp.start(smpp_binds or 1)
        await smpp.wait_bound()
    tallies = []
    for seg in segments:
        tally = await run_segment(seg, watch, register, smpp)
        print(_progress(tally), file=sys.stderr, flush=True)
        tallies.append(tally)
    if smpp is not None:
        await smpp.stop()
    return tallies


def main() -> None:
    """Read the plan ({"segments": [...], "watch": {...}}) on stdin, write the tallies on stdout."""
    plan = json.load(sys.stdin)
    segments = [Segment(**s) for s in plan["segments"]]
    tallies = asyncio.run(run_plan(segments, Watch(**plan.get("watch", {})), plan.get("smpp_binds", 0)))
    json.dump([asdict(t) for t in tallies], sys.stdout)


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:  # Ctrl-C reaches the whole process group; the orchestrator reports it
        sys.exit(130)
