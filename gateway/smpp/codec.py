"""SMPP 3.4 PDUs through smpplib's codec: bytes to a parsed PDU and back, and USSD's values.

The product holds no PDU codec of its own: smpplib builds and parses every field. Two gaps are
filled here by extending its parameter tables, not by parsing bytes: `deliver_sm` and `data_sm`
may carry `ussd_service_op` (USSD gateways put it there; smpplib only knows it on `submit_sm`),
and a vendor TLV (some gateways' session id) is kept as raw bytes instead of failing the PDU.
"""

from __future__ import annotations

import struct
from enum import IntEnum
from typing import Any

from smpplib import command as smpp_command
from smpplib import command_codes, consts
from smpplib import exceptions as smpp_exceptions
from smpplib.gsm import GSM_CHARACTER_TABLE, gsm_encode

HEADER = 16
MAX_PDU = 64 * 1024  # far above any USSD PDU; a longer length field is a broken stream
TAG_ITS_SESSION_INFO = consts.OPTIONAL_PARAMS["its_session_info"]  # 0x1383
TAG_USSD_SERVICE_OP = consts.OPTIONAL_PARAMS["ussd_service_op"]  # 0x0501

ROK = consts.SMPP_ESME_ROK
RINVMSGLEN = consts.SMPP_ESME_RINVMSGLEN
RINVCMDLEN = consts.SMPP_ESME_RINVCMDLEN
RINVCMDID = consts.SMPP_ESME_RINVCMDID
RINVBNDSTS = consts.SMPP_ESME_RINVBNDSTS
RSYSERR = consts.SMPP_ESME_RSYSERR
RINVSRCADR = consts.SMPP_ESME_RINVSRCADR
RINVPASWD = consts.SMPP_ESME_RINVPASWD
RTHROTTLED = consts.SMPP_ESME_RTHROTTLED
RINVOPTPARSTREAM = consts.SMPP_ESME_RINVOPTPARSTREAM
RX_T_APPN = consts.SMPP_ESME_RX_T_APPN


class UssdOp(IntEnum):
    """`ussd_service_op` values (SMPP 3.4, 5.3.2.44)."""

    PSSD_INDICATION = 0
    PSSR_INDICATION = 1  # the phone dialled the code
    USSR_REQUEST = 2  # our screen, the session goes on
    USSN_REQUEST = 3
    PSSD_RESPONSE = 16
    PSSR_RESPONSE = 17  # our last screen, the session ends
    USSR_CONFIRM = 18  # the phone's answer to a USSR request
    USSN_CONFIRM = 19


class DataCoding(IntEnum):
    """The `data_coding` values a USSD gateway uses for text."""

    GSM7 = 0  # the SMSC default alphabet (sent unpacked, one septet per octet)
    LATIN1 = 3
    UCS2 = 8


class MalformedPdu(ValueError):
    """A PDU that cannot be acted on: answered with `status` (a nack or an error response)."""

    def __init__(self, reason: str, *, command_id: int, sequence: int, status: int) -> None:
        super().__init__(reason)
        self.command_id = command_id
        self.sequence = sequence
        self.status = status


class _Sequence:
    """smpplib numbers PDUs through a client; ours are numbered by the session that sends them."""

    sequence = 0

    def next_sequence(self) -> int:
        return 0


_NUMBERING = _Sequence()
_ussd_op = smpp_command.Param(type=int, size=1)


class _VendorTolerant:
    """Optional parameters read with smpplib's field parsers; one it has no field for is kept raw."""

    vendor_tlvs: dict[int, bytes]

    def parse_optional_params(self, data: bytes) -> None:
        self.vendor_tlvs = {}
        pos = 0
        while pos < len(data):
            if pos + 4 > len(data):
                raise ValueError("truncated optional parameter header")
            tag, length = struct.unpack(">HH", data[pos : pos + 4])
            pos += 4
            if pos + length > len(data):
                raise ValueError(f"optional parameter 0x{tag:04x} runs past the PDU")
            name = next((n for n, code in consts.OPTIONAL_PARAMS.items() if code == tag), None)
            param = self.params.get(name) if name else None  # type: ignore[attr-defined]
            if param is None:
                self.vendor_tlvs[tag] = data[pos : pos + length]
            elif param.type is int:
                if length != param.size:
                    raise ValueError(f"{name} has {length} octets, not {param.size}")
                self._parse_int(name, data, pos)  # type: ignore[attr-defined]
            elif param.type is str:
                self._parse_string(name, data, pos, length)  # type: ignore[attr-defined]
            else:
                self._parse_ostring(name, data, pos, length)  # type: ignore[attr-defined]
            pos += length


class _DeliverSM(_VendorTolerant, smpp_command.DeliverSM):
    params = {**smpp_command.DeliverSM.params, "ussd_service_op": _ussd_op}
    params_order = (*smpp_command.DeliverSM.params_order, "ussd_service_op")


class _DataSM(_VendorTolerant, smpp_command.DataSM):
    params = {**smpp_command.DataSM.params, "ussd_service_op": _ussd_op}
    params_order = (*smpp_command.DataSM.params_order, "ussd_service_op")


class _SubmitSM(_VendorTolerant, smpp_command.SubmitSM):
    pass


_CLASSES: dict[str, type] = {"deliver_sm": _DeliverSM, "data_sm": _DataSM, "submit_sm": _SubmitSM}


def command_name(command_id: int) -> str | None:
    """smpplib's name of a command id, or None for one it does not know."""
    try:
        return command_codes.get_command_name(command_id)
    except smpp_exceptions.UnknownCommandError:
        return None


def header(raw: bytes) -> tuple[int, int, int, int]:
    """(command_length, command_id, command_status, sequence_number) of a PDU's first 16 octets."""
    return struct.unpack(">LLLL", raw[:HEADER])


def decode(raw: bytes) -> Any:
    """A complete PDU -> smpplib's command object (`.command`, `.sequence`, `.status`, fields).

    Raises `MalformedPdu` with the status to answer: an unknown command id, a body that smpplib
    cannot read, or a short_message that disagrees with its length.
    """
    _length, command_id, _status, sequence = header(raw)
    name = command_name(command_id)
    if name is None:
        raise MalformedPdu(
            f"unknown command id 0x{command_id:08x}",
            command_id=command_id,
            sequence=sequence,
            status=RINVCMDID,
        )
    cls = _CLASSES.get(name)
    try:
        if cls is None:
            pdu = smpp_command.factory(
                name, client=_NUMBERING, sequence=sequence, allow_unknown_opt_params=True
            )
        else:
            pdu = cls(name, client=_NUMBERING, sequence=sequence, allow_unknown_opt_params=True)
        pdu.parse(raw)
    except (
        ValueError,
        KeyError,
        IndexError,
        TypeError,
        struct.error,
        smpp_exceptions.UnknownCommandError,
    ) as exc:
        status = RINVOPTPARSTREAM if "optional" in str(exc) else RINVMSGLEN
        raise MalformedPdu(
            f"{name} body unreadable ({exc})", command_id=command_id, sequence=sequence, status=status
        ) from None
    sm_length = getattr(pdu, "sm_length", None)
    if sm_length is not None and len(pdu.short_message or b"") != sm_length:
        raise MalformedPdu(
            f"{name} short_message is not sm_length ({sm_length}) octets",
            command_id=command_id,
            sequence=sequence,
            status=RINVMSGLEN,
        )
    return pdu


def encode(name: str, sequence: int, *, status: int = ROK, **fields: Any) -> bytes:
    """The wire bytes of PDU `name` with smpplib's field names (`short_message` in bytes)."""
    vendor: dict[int, bytes] = fields.pop("vendor_tlvs", None) or {}
    cls = _CLASSES.get(name)
    if cls is None:
        pdu = smpp_command.factory(name, client=_NUMBERING, sequence=sequence, status=status, **fields)
    else:
        pdu = cls(name, client=_NUMBERING, sequence=sequence, status=status, **fields)
    pdu.sequence = sequence
    raw = pdu.generate()
    if not vendor:
        return raw
    # smpplib cannot write a tag it has no field for ("Vendors not supported"): a vendor session
    # TLV, echoed as received, is appended as tag, length, value, and the length corrected.
    extra = b"".join(struct.pack(">HH", tag, len(value)) + value for tag, value in vendor.items())
    return struct.pack(">L", len(raw) + len(extra)) + raw[4:] + extra


def nack_for(command_id: int) -> str:
    """The response to answer a request with an error: its own `_resp`, or `generic_nack`."""
    name = command_name(command_id)
    if name and not command_id & 0x80000000 and command_name(command_id | 0x80000000):
        return f"{name}_resp"
    return "generic_nack"


def text_of(raw: bytes | None, data_coding: int) -> str:
    """Decode a short_message by its data_coding; an undecodable one is a `ValueError`."""
    raw = raw or b""
    coding = data_coding & 0x0F if data_coding in (0xF0, 0xF4) else data_coding
    if coding == DataCoding.UCS2:
        return raw.decode("utf-16-be")
    if coding == DataCoding.LATIN1:
        return raw.decode("latin-1")
    return _gsm7_decode(raw)


def bytes_of(text: str, data_coding: int) -> bytes:
    """Encode a screen for data_coding; letters outside GSM-7 or Latin-1 become '?'."""
    if data_coding == DataCoding.UCS2:
        return text.encode("utf-16-be")
    if data_coding == DataCoding.LATIN1:
        return text.encode("latin-1", errors="replace")
    return _gsm7_encode(text)


def _gsm7_decode(raw: bytes) -> str:
    out: list[str] = []
    escape = False
    for octet in raw:
        if octet > 0x7F:
            raise ValueError(f"octet 0x{octet:02x} is not GSM-7")
        if escape:
            out.append(GSM_CHARACTER_TABLE[0x80 + octet])
            escape = False
        elif octet == 0x1B:
            escape = True
        else:
            out.append(GSM_CHARACTER_TABLE[octet])
    return "".join(out)


def _gsm7_encode(text: str) -> bytes:
    known = "".join(c if c in _GSM_CHARACTERS else "?" for c in text)
    return gsm_encode(known)


# smpplib's table: the basic set, then the escape-table letters (a backtick where there is none).
_GSM_CHARACTERS = frozenset(c for c in GSM_CHARACTER_TABLE if c not in "`\x1b") | {"`"}
