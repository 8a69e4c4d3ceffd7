"""SMPP links: where the USSD connector binds (SMPP_CONNECTIONS), parsed and checked once.

One link per operator gateway, written as a URL so that one environment variable holds them all:

    smpp://system_id:password@host:port?system_type=USSD&bind=trx&network=61002
    smpps://...  (TLS)

Several links are separated by whitespace or `;`. The query's keys are `SmppLink`'s fields; an
unknown key or a malformed value is a `ValueError` naming it, so a typo fails at start-up.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, fields
from urllib.parse import parse_qsl, unquote, urlsplit

_BIND_MODES = ("trx", "rx+tx")
_ITS_SESSION_INFO = 0x1383  # the SMPP 3.4 tag; a vendor tag (0x1400-0x3fff) is the other choice


@dataclass(frozen=True)
class SmppLink:
    """One bind to one operator's USSD gateway (an entry of SMPP_CONNECTIONS); defaults are SMPP 3.4's
    usual USSD profile. The op codes are `ussd_service_op` values (SMPP 3.4, 5.3.2.44)."""

    host: str
    port: int = 2775
    system_id: str = ""
    password: str = field(default="", repr=False)
    system_type: str = ""
    bind: str = "trx"  # trx: one transceiver; rx+tx: a receiver and a transmitter
    tls: bool = False
    name: str = ""  # for logs and session ids; default host:port
    network: str = ""  # the network code steps carry (e.g. 61002 Orange Mali, 61001 Malitel)
    service_type: str = "USSD"  # of our submit_sm
    service_code: str = ""  # when the gateway does not put the code in destination_addr
    op_dial: int = 1  # a phone opens a session
    op_answer: int = 18  # a phone answers our screen
    op_continue: int = 2  # our screen, more to come
    op_end: int = 17  # our last screen
    dial_through: bool = True  # the first PDU carries the dialled string (*384*7472*2#)
    data_coding: int = 0  # of our replies; incoming text is read by its own
    session_tlv: int = _ITS_SESSION_INFO  # where the session id is; a vendor tag (0x1400+) else
    reply_timeout: float = 20.0  # seconds the gateway waits for our screen, then closes the session
    window: int = 10  # requests sent and not yet answered
    enquire_link: float = 30.0  # seconds of silence before a keep-alive
    response_timeout: float = 10.0  # a request unanswered this long means the bind is dead
    reconnect_min: float = 1.0  # first wait before binding again; doubles up to reconnect_max
    reconnect_max: float = 60.0
    throttle_wait: float = 1.0  # first wait after ESME_RTHROTTLED; doubles up to 30 s

    @property
    def label(self) -> str:
        return self.name or f"{self.host}:{self.port}"


_INT_OR_HEX = re.compile(r"^(0x[0-9a-fA-F]+|\d+)$")


def parse_smpp_links(value: str) -> tuple[SmppLink, ...]:
    """`smpp://...` URLs separated by whitespace or ';' -> settings; ValueError names the fault."""
    links = tuple(parse_link(part) for part in re.split(r"[\s;]+", value.strip()) if part)
    labels = [link.label for link in links]
    if len(set(labels)) != len(labels):
        raise ValueError("two links have the same name (set name=... on each)")
    return links


def parse_link(url: str) -> SmppLink:
    """One `smpp://` or `smpps://` URL -> its settings."""
    parts = urlsplit(url)
    if parts.scheme not in ("smpp", "smpps") or not parts.hostname:
        raise ValueError(f"{_redacted(url)}: must be smpp://system_id:password@host:port?...")
    try:
        port = parts.port or 2775
    except ValueError:
        raise ValueError(f"{_redacted(url)}: the port is not a number") from None
    values: dict[str, object] = {
        "host": parts.hostname,
        "port": port,
        "system_id": unquote(parts.username or ""),
        "password": unquote(parts.password or ""),
        "tls": parts.scheme == "smpps",
    }
    types = {f.name: f.type for f in fields(SmppLink)}
    for key, raw in parse_qsl(parts.query, keep_blank_values=True):
        if key not in types or key in ("host", "port", "system_id", "password"):
            raise ValueError(f"{_redacted(url)}: unknown setting {key!r}")
        values[key] = _coerce_link_value(key, str(types[key]), raw, url)
    link = SmppLink(**values)  # type: ignore[arg-type]
    _check_link(link, url)
    return link


def _coerce_link_value(key: str, type_name: str, raw: str, url: str) -> object:
    try:
        if type_name == "bool":
            if raw.lower() not in ("1", "0", "true", "false", "yes", "no"):
                raise ValueError
            return raw.lower() in ("1", "true", "yes")
        if type_name == "int":
            if not _INT_OR_HEX.match(raw):
                raise ValueError
            return int(raw, 0)
        if type_name == "float":
            return float(raw)
    except ValueError:
        raise ValueError(f"{_redacted(url)}: {key}={raw!r} is not a valid {type_name}") from None
    return raw


def _check_link(link: SmppLink, url: str) -> None:
    where = _redacted(url)
    if link.bind not in _BIND_MODES:
        raise ValueError(f"{where}: bind must be trx or rx+tx")
    if link.data_coding not in (0, 3, 8):
        raise ValueError(f"{where}: data_coding must be 0 (GSM-7), 3 (Latin-1) or 8 (UCS-2)")
    for op in ("op_dial", "op_answer", "op_continue", "op_end"):
        if not 0 <= getattr(link, op) <= 255:
            raise ValueError(f"{where}: {op} must be one octet")
    if link.session_tlv != _ITS_SESSION_INFO and not 0x1400 <= link.session_tlv <= 0x3FFF:
        raise ValueError(
            f"{where}: session_tlv must be its_session_info (0x1383) or a vendor tag 0x1400-0x3fff"
        )
    if link.window < 1 or link.reply_timeout <= 0 or link.enquire_link <= 0 or link.response_timeout <= 0:
        raise ValueError(f"{where}: window must be >= 1 and the time-outs > 0")
    if not 0 < link.reconnect_min <= link.reconnect_max or link.throttle_wait <= 0:
        raise ValueError(f"{where}: 0 < reconnect_min <= reconnect_max and throttle_wait > 0 must hold")
    if len(link.system_id) > 15 or len(link.password) > 8 or len(link.system_type) > 12:
        raise ValueError(f"{where}: system_id (15), password (8) or system_type (12) is too long for SMPP")


def _redacted(url: str) -> str:
    """The URL without its password, for an error message."""
    return re.sub(r"(//[^:/@]*):[^@]*@", r"\1:***@", url)
