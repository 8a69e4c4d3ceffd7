"""What a USSD PDU means: its phone, session and input as a neutral step; our reply as a submit_sm.

Kept apart from the connection handling so that each operator difference (op codes, dial-through,
data_coding, where the session id is) is read in one place, from the link's settings.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from typing import Any

from config import SmppLink
from gateway.smpp import codec
from gateway.ussd import UssdReply, UssdStep

_MSISDN = re.compile(r"^\+?[1-9]\d{6,14}$")
MAX_SHORT_MESSAGE = 254  # octets; a longer screen (UCS-2) goes in message_payload


class UnusablePdu(ValueError):
    """A well-formed PDU that is not a USSD step we can take; `status` is the answer to give."""

    def __init__(self, reason: str, status: int) -> None:
        super().__init__(reason)
        self.status = status


@dataclass(frozen=True)
class Incoming:
    """A USSD PDU read: who, which session, what was typed, and how to answer it."""

    phone: str  # E.164
    short_code: str  # the destination_addr, the source of our reply
    session_key: str  # the gateway's session number (or the vendor TLV's value, in hex)
    session_info: int | None  # its_session_info as received, echoed in the reply
    vendor_session: bytes | None
    op: int | None
    text: str
    dialled: bool
    received_at: float
    sequence: int

    def dedup_key(self, link: SmppLink) -> tuple[object, ...]:
        """The same PDU delivered again: same phone, session (dialogue unit included), op and input.

        its_session_info numbers each dialogue unit, so a repeat is recognised even on a new bind;
        a vendor session TLV does not, so there the PDU's sequence number tells two answers apart
        (the same input typed twice), and a repeat is recognised on the same bind only.
        """
        if self.session_info is not None:
            return (link.label, self.phone, self.session_info, self.op, self.text)
        return (link.label, self.phone, self.vendor_session, self.op, self.text, self.sequence)


def read_incoming(link: SmppLink, pdu: Any) -> Incoming:
    """A parsed deliver_sm or data_sm -> `Incoming`; `UnusablePdu` says why it cannot be a step."""
    source = _text(pdu.source_addr)
    if not _MSISDN.match(source):
        raise UnusablePdu("source_addr is not an MSISDN", codec.RINVSRCADR)
    raw = pdu.short_message if pdu.command == "deliver_sm" else None
    if not raw:
        raw = getattr(pdu, "message_payload", None) or b""
    try:
        text = codec.text_of(raw, pdu.data_coding or 0)
    except (UnicodeDecodeError, ValueError):
        raise UnusablePdu(
            f"short_message does not decode as data_coding {pdu.data_coding}", codec.RINVMSGLEN
        ) from None
    vendor = getattr(pdu, "vendor_tlvs", {})
    info = pdu.its_session_info
    if link.session_tlv == codec.TAG_ITS_SESSION_INFO:
        if info is None:
            raise UnusablePdu("no its_session_info", codec.RINVOPTPARSTREAM)
        session_key = str(info >> 8)  # octet 1: the session number; octet 2: the dialogue unit
        vendor_value = None
    else:
        vendor_value = vendor.get(link.session_tlv)
        if not vendor_value:
            raise UnusablePdu(f"no session TLV 0x{link.session_tlv:04x}", codec.RINVOPTPARSTREAM)
        session_key = vendor_value.hex()
    op = getattr(pdu, "ussd_service_op", None)
    if op not in (link.op_dial, link.op_answer):
        raise UnusablePdu(f"ussd_service_op {op} is neither a dial nor an answer", codec.RX_T_APPN)
    return Incoming(
        phone=source if source.startswith("+") else f"+{source}",
        short_code=_text(pdu.destination_addr),
        session_key=session_key,
        session_info=info,
        vendor_session=vendor_value,
        op=op,
        text=text.strip(),
        dialled=op == link.op_dial,
        received_at=time.monotonic(),
        sequence=pdu.sequence,
    )


def dial_input(dialled: str, service_code: str, dial_through: bool) -> str:
    """The answers typed into the dial: `*384*7472*2#` for `*384*7472#` is "2"; none is ""."""
    if not dial_through or not dialled.startswith("*"):
        return ""
    typed = [p for p in dialled.rstrip("#").lstrip("*").split("*")]
    base = [p for p in service_code.rstrip("#").lstrip("*").split("*") if p]
    if typed[: len(base)] != base:
        return ""
    return "*".join(typed[len(base) :])


def to_step(link: SmppLink, incoming: Incoming, session_id: str, service_code: str, step_id: str) -> UssdStep:
    """The neutral step: only the newest input (SMPP never sends a history), and whether it dials."""
    text = dial_input(incoming.text, service_code, link.dial_through) if incoming.dialled else incoming.text
    return UssdStep(
        session_id=session_id,
        phone=incoming.phone,
        service_code=service_code,
        text=text,
        cumulative=False,
        network=link.network,
        transport="smpp",
        dialled=incoming.dialled,
        step_id=step_id,
    )


def reply_fields(link: SmppLink, incoming: Incoming, reply: UssdReply) -> dict[str, Any]:
    """The submit_sm of a reply: same session info, USSR request to go on or PSSR response to end."""
    body = codec.bytes_of(reply.text, link.data_coding)
    fields: dict[str, Any] = {
        "service_type": link.service_type,
        "source_addr": incoming.short_code,
        "destination_addr": incoming.phone.lstrip("+"),
        "source_addr_ton": 0,
        "source_addr_npi": 0,
        "dest_addr_ton": 1,
        "dest_addr_npi": 1,
        "data_coding": link.data_coding,
        "ussd_service_op": link.op_end if reply.end else link.op_continue,
    }
    if len(body) > MAX_SHORT_MESSAGE:
        fields["message_payload"] = body
    else:
        fields["short_message"] = body
    if incoming.session_info is not None:
        fields["its_session_info"] = incoming.session_info
    if incoming.vendor_session is not None:
        fields["vendor_tlvs"] = {link.session_tlv: incoming.vendor_session}
    return fields


def _text(value: bytes | str | None) -> str:
    if isinstance(value, bytes):
        return value.decode("latin-1")
    return value or ""
