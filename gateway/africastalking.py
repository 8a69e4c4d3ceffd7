"""Africa's Talking adapter: sends through the official SDK and classifies every answer.

The SDK builds the request (URL, form fields, `apiKey` header, number check); this module owns
the transport, for three reasons the stock SDK cannot serve:

- one `requests.Session` per gateway, so a worker reuses its connection instead of opening one
  per message (the SDK calls `requests.post` afresh each time);
- the HTTP status of a failed request (the SDK folds every non-2xx into an exception holding only
  the body, and 429/5xx must be told apart from 4xx);
- an explicit time-out and base URL, so the local emulator and slow networks are first-class.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

import requests
from africastalking.Service import DEFAULT_TIMEOUT_S, validate_phone
from africastalking.SMS import SMSService

from gateway.base import Outcome, OutgoingSms, SendResult, failed, redact_numbers, unanswered
from gateway.segments import segment_count

log = logging.getLogger(__name__)

# Per-recipient status codes of SMSMessageData.Recipients[i].statusCode.
ACCEPTED_CODES = frozenset({100, 101, 102})  # Processed, Sent, Queued
HELD_CODES = frozenset({401, 405})  # RiskHold, InsufficientBalance: the account, not the message
RETRY_CODES = frozenset({500, 501, 502})  # InternalServerError, GatewayError, RejectedByGateway
PERMANENT_CODES = frozenset({402, 403, 404, 406, 407, 409})
# InvalidSenderId, InvalidPhoneNumber, UnsupportedNumberType, UserInBlacklist, CouldNotRoute,
# DoNotDisturbRejection: sending the same message again cannot succeed.


class _SmsService(SMSService):
    """The SDK's SMS service on our own session and base URL, returning the raw HTTP response."""

    def __init__(self, username: str, api_key: str, api_url: str | None, session: requests.Session) -> None:
        self._session = session
        super().__init__(username, api_key)
        if api_url:
            base = api_url.rstrip("/")
            if not base.endswith("/version1"):
                base += "/version1"
            # The SDK keeps its endpoints in these two attributes (production or sandbox by username).
            self._baseUrl = base
            self._contentUrl = base

    def _make_request(  # type: ignore[override]
        self,
        url: str,
        method: str,
        headers: Mapping[str, str],
        data: Mapping[str, Any] | None,
        params: Mapping[str, Any] | None,
        callback: Any = None,
        timeout: float | tuple[float, float] = DEFAULT_TIMEOUT_S,
    ) -> requests.Response:
        if callback is not None:
            raise NotImplementedError("asynchronous SDK callbacks are not used by Sira")
        return self._session.request(method, url, headers=headers, data=data, params=params, timeout=timeout)


class AfricasTalkingGateway:
    """SmsGateway for Africa's Talking (or the local emulator, which speaks the same API)."""

    def __init__(self, username: str, api_key: str, api_url: str | None, timeout_seconds: float) -> None:
        if timeout_seconds <= 0:
            raise ValueError("timeout_seconds must be positive: an unbounded send blocks a worker")
        self.timeout_seconds = timeout_seconds
        self._session = requests.Session()
        self._service = _SmsService(username, api_key, api_url, self._session)
        self.endpoint = urlsplit(self._service._baseUrl).netloc  # for logs: host only, never a number

    def send(self, sms: OutgoingSms) -> SendResult:
        """Send one SMS and say what to do next; gateway-side failures are returned, not raised."""
        if not validate_phone(sms.to):
            # The SDK would raise ValueError with the number in its message; answer without it.
            return _log(failed(Outcome.PERMANENT, "InvalidPhoneNumber", None, detail="not an E.164 number"))
        try:
            response = self._service.send(
                sms.text, [sms.to], sender_id=sms.sender, timeout=self.timeout_seconds
            )
        except requests.RequestException as exc:
            return _log(unanswered(exc, self.endpoint, self.timeout_seconds))
        return _log(result_from_response(response.status_code, response.text, sms))

    def close(self) -> None:
        """Release the pooled connection (workers call this before exiting)."""
        self._session.close()


def result_from_response(http_status: int, body: str, sms: OutgoingSms) -> SendResult:
    """Classify one HTTP answer of POST /version1/messaging; pure, so tests can feed raw bodies."""
    if http_status == 401:
        return failed(
            Outcome.HELD, "HTTP 401", 401, detail="credentials rejected: check AT_USERNAME and AT_API_KEY"
        )
    if http_status == 429 or http_status >= 500:
        return failed(Outcome.RETRY, f"HTTP {http_status}", http_status, detail=redact_numbers(body))
    if 400 <= http_status < 500:
        return failed(Outcome.PERMANENT, f"HTTP {http_status}", http_status, detail=redact_numbers(body))
    if not 200 <= http_status < 300:
        return failed(Outcome.RETRY, f"HTTP {http_status}", http_status, detail="unexpected HTTP status")

    try:
        data = json.loads(body)["SMSMessageData"]
        recipients = data["Recipients"]
        message = str(data.get("Message", ""))
    except (ValueError, KeyError, TypeError):
        # A 2xx we cannot read may still mean "accepted": retrying risks one duplicate, giving up
        # risks a lost referral, and the product promises never to lose one.
        return failed(Outcome.RETRY, f"HTTP {http_status}", http_status, detail="unreadable answer body")
    if not recipients:
        # Africa's Talking answers this way when the request as a whole is refused
        # (e.g. "InvalidSenderId"), with the reason in Message.
        reason = redact_numbers(message) or "no recipient accepted"
        return failed(Outcome.PERMANENT, reason[:64], None, detail=reason)

    recipient = next((r for r in recipients if r.get("number") == sms.to), recipients[0])
    code = _as_int(recipient.get("statusCode"))
    status = str(recipient.get("status", ""))
    if code in ACCEPTED_CODES:
        outcome = Outcome.ACCEPTED
    elif code in HELD_CODES:
        outcome = Outcome.HELD
    elif code in PERMANENT_CODES:
        outcome = Outcome.PERMANENT
    else:  # RETRY_CODES and anything Africa's Talking may add later
        outcome = Outcome.RETRY
    message_id = recipient.get("messageId")
    parts = _as_int(recipient.get("messageParts"))
    return SendResult(
        outcome=outcome,
        gateway_id=str(message_id) if message_id not in (None, "", "None") else None,
        status=status,
        status_code=code,
        cost=str(recipient["cost"]) if recipient.get("cost") is not None else None,
        segments=parts if parts is not None else segment_count(sms.text),
        detail="" if outcome is Outcome.ACCEPTED else f"{redact_numbers(status)} ({code})",
    )


def _as_int(value: object) -> int | None:
    try:
        return int(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None


def _log(result: SendResult) -> SendResult:
    """Log the outcome by gateway id only: the recipient's number never reaches a log line."""
    if result.outcome is Outcome.ACCEPTED:
        # At DEBUG: the send job logs the outcome with its route (workers/sms.py), one INFO line an SMS.
        log.debug("sms accepted id=%s parts=%s cost=%s", result.gateway_id, result.segments, result.cost)
    else:
        log.warning(
            "sms %s id=%s status=%s code=%s: %s",
            result.outcome.value,
            result.gateway_id,
            result.status,
            result.status_code,
            result.detail,
        )
    return result
