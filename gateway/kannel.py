"""Kannel adapter: sends through smsbox's HTTP `sendsms` and classifies every answer.

Kannel is the open-source SMS gateway Malian aggregators run in front of an operator's SMPP
bind. Its `sendsms` answers a status line and no message id, so the adapter makes the id itself
(the send job's reference for the attempt, see OutgoingSms) and puts it in the `dlr-url` Kannel calls back with each delivery report: the
report then finds its message exactly as Africa's Talking's do (see web/kannel.py).

Everything a gateway instance needs comes through its constructor, never from global settings,
so a router can hold several (one per aggregator or operator) side by side.
"""

from __future__ import annotations

import logging
import uuid
from urllib.parse import urlencode, urlsplit

import requests

from gateway.base import Outcome, OutgoingSms, SendResult, failed, redact_numbers, unanswered
from gateway.segments import is_gsm7, segment_count

log = logging.getLogger(__name__)

# Kannel's data coding values (sendsms `coding`): 0 the GSM 7-bit default alphabet, 2 UCS-2.
CODING_GSM7 = 0
CODING_UCS2 = 2
# DLR types Kannel reports through %d, and the delivery statuses Africa's Talking uses for the
# same state, so that both rank alike in OutboundSms.record_delivery.
DLR_STATUSES = {
    1: "Success",  # delivered to the phone
    2: "Failed",  # the phone or network could not take it
    4: "Buffered",  # queued on the SMSC
    8: "Submitted",  # the SMSC acknowledged the submit
    16: "Rejected",  # the SMSC refused the submit
}
DEFAULT_DLR_MASK = 31
# Where Sira serves Kannel's callbacks (web/kannel.py), behind the callback secret.
CALLBACK_PREFIX = "/sms/kannel"
DELIVERY_PATH = f"{CALLBACK_PREFIX}/delivery"
INCOMING_PATH = f"{CALLBACK_PREFIX}/incoming"  # all five types above
# Body of a 403 that is about one message's number, not about our account.
_DENIED_NUMBER = "denied by white- and/or black-lists"


class KannelGateway:
    """SmsGateway for a Kannel smsbox (an aggregator's, or a local one with a fake SMSC)."""

    def __init__(
        self,
        sendsms_url: str,
        username: str,
        password: str,
        dlr_url: str,
        timeout_seconds: float,
        dlr_mask: int = DEFAULT_DLR_MASK,
        smsc: str = "",
    ) -> None:
        """`dlr_url`: where Kannel reports deliveries; `?id=<our id>&type=%d` is appended to it."""
        if timeout_seconds <= 0:
            raise ValueError("timeout_seconds must be positive: an unbounded send blocks a worker")
        if not 0 <= dlr_mask <= 31:
            raise ValueError("dlr_mask must be between 0 and 31 (sum of Kannel's DLR types 1, 2, 4, 8, 16)")
        self.sendsms_url = sendsms_url
        self.timeout_seconds = timeout_seconds
        self.endpoint = urlsplit(sendsms_url).netloc  # for logs: host only, never a number
        self._credentials = {"username": username, "password": password}
        self._dlr_url = dlr_url
        self._dlr_mask = dlr_mask
        self._smsc = smsc
        self._session = requests.Session()

    def send(self, sms: OutgoingSms) -> SendResult:
        """Send one SMS and say what to do next; gateway-side failures are returned, not raised."""
        message_id = sms.reference or uuid.uuid4().hex
        try:
            response = self._session.get(
                self.sendsms_url, params=self.parameters(sms, message_id), timeout=self.timeout_seconds
            )
        except requests.RequestException as exc:
            return _log(unanswered(exc, self.endpoint, self.timeout_seconds))
        return _log(result_from_response(response.status_code, response.text, sms, message_id))

    def parameters(self, sms: OutgoingSms, message_id: str) -> dict[str, str | int]:
        """The sendsms query: GSM-7 when every character fits, UCS-2 otherwise (as segments.py bills)."""
        params: dict[str, str | int] = {
            **self._credentials,
            "to": sms.to,
            "text": sms.text,
            "charset": "UTF-8",
            "coding": CODING_GSM7 if is_gsm7(sms.text) else CODING_UCS2,
        }
        if sms.sender:
            params["from"] = sms.sender
        if self._smsc:
            params["smsc"] = self._smsc
        if self._dlr_mask:
            params["dlr-mask"] = self._dlr_mask
            separator = "&" if "?" in self._dlr_url else "?"
            # Kannel replaces %d by the DLR type when it calls back; urlencode would escape the %.
            params["dlr-url"] = f"{self._dlr_url}{separator}{urlencode({'id': message_id})}&type=%d"
        return params

    def close(self) -> None:
        """Release the pooled connection (workers call this before exiting)."""
        self._session.close()


def result_from_response(http_status: int, body: str, sms: OutgoingSms, message_id: str) -> SendResult:
    """Classify one answer of smsbox's sendsms; pure, so tests can feed raw answers."""
    text = body.strip()
    if 200 <= http_status < 300:
        # "0: Accepted for delivery", or "3: Queued for later delivery" when no SMSC is bound
        # right now: Kannel keeps the message and sends it when one is. Both are Kannel's to send.
        status = "Queued" if text.startswith("3:") else "Accepted"
        return SendResult(Outcome.ACCEPTED, message_id, status, http_status, None, segment_count(sms.text))
    if http_status in (401, 403) and _DENIED_NUMBER not in text:
        # Bad credentials, or a sendsms-user not allowed to set what we set: every message would
        # fail alike, so keep them and alert a coordinator instead of failing each one for good.
        detail = f"refused by {redact_numbers(text) or 'Kannel'}: check KANNEL_USERNAME and KANNEL_PASSWORD"
        return failed(Outcome.HELD, f"HTTP {http_status}", http_status, detail=detail[:200])
    if http_status == 404:
        return failed(Outcome.HELD, "HTTP 404", 404, detail="no sendsms there: check KANNEL_SENDSMS_URL")
    if http_status == 429 or http_status >= 500:
        # 503 "Sending failed." is bearerbox refusing for now (its queue is full, it is stopping).
        return failed(Outcome.RETRY, f"HTTP {http_status}", http_status, detail=redact_numbers(text))
    if 400 <= http_status < 500:
        # "Missing receiver number", "Charset or body misformed", a number on a black-list...
        return failed(Outcome.PERMANENT, f"HTTP {http_status}", http_status, detail=redact_numbers(text))
    return failed(Outcome.RETRY, f"HTTP {http_status}", http_status, detail="unexpected HTTP status")


def delivery_status(dlr_type: int) -> str | None:
    """The delivery status (Africa's Talking's words) of Kannel's DLR type; None if it is not one."""
    return DLR_STATUSES.get(dlr_type)


def _log(result: SendResult) -> SendResult:
    """Log the outcome by our message id only: the recipient's number never reaches a log line."""
    if result.outcome is Outcome.ACCEPTED:
        # At DEBUG when sent: the send job logs the outcome with its route (workers/sms.py), one INFO
        # line an SMS. Queued (no SMSC bound right now) is worth its own line.
        level = logging.INFO if result.status == "Queued" else logging.DEBUG
        log.log(
            level,
            "sms %s by kannel id=%s parts=%s",
            result.status.lower(),
            result.gateway_id,
            result.segments,
        )
    else:
        log.warning(
            "sms %s by kannel status=%s code=%s: %s",
            result.outcome.value,
            result.status,
            result.status_code,
            result.detail,
        )
    return result
