"""Orange SMS API adapter (Middle East and Africa, Mali included): OAuth 2.0, send, callbacks, balance.

Orange wants a bearer token from `POST /oauth/v3/token` (client credentials, Basic auth) on every
call. The token is kept until shortly before it expires, shared by the worker's threads, and
renewed once when Orange answers 401 anyway (revoked, or the clocks disagree); the send is then
tried once more. A message goes from our number, `tel:+223...`, with a sender name.

Delivery receipts and incoming SMS arrive as JSON notifications; `delivery_fields` and
`incoming_fields` turn them into the fields Africa's Talking's callbacks carry, so that what
follows (statuses, provider commands) is written once, in services/inbound.py.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import quote, urlsplit

import requests

from gateway.base import Outcome, OutgoingSms, SendResult, failed, redact_numbers, unanswered
from gateway.segments import segment_count

log = logging.getLogger(__name__)

TOKEN_PATH = "/oauth/v3/token"
CONTRACTS_PATH = "/sms/admin/v1/contracts"
COUNTRY = "MLI"  # the contracts (bundles) that pay for SMS to Malian numbers
# Renew this long before the token's announced end, so a send never leaves with a dying token.
TOKEN_MARGIN_SECONDS = 60.0
MAX_RETRY_AFTER_SECONDS = 3600.0

# deliveryInfo.deliveryStatus -> the status Africa's Talking would report (models.DELIVERY_RANK).
DELIVERY_STATUSES = {
    "DeliveredToTerminal": "Success",
    "DeliveryImpossible": "Failed",
    "DeliveredToNetwork": "Sent",
    "MessageWaiting": "Buffered",
    "DeliveryUncertain": "Sent",
    "DeliveryNotificationNotSupported": "Sent",
}


class TokenError(Exception):
    """No token: the outcome says whether to retry (Orange down) or hold (credentials refused)."""

    def __init__(self, result: SendResult) -> None:
        super().__init__(result.detail)
        self.result = result


@dataclass
class _Token:
    value: str
    renew_at: float  # time.monotonic() after which it is renewed before use


class TokenCache:
    """One bearer token per process, fetched under a lock so that concurrent sends fetch it once."""

    def __init__(self, fetch: Callable[[], tuple[str, float]], clock: Callable[[], float] = time.monotonic):
        self._fetch = fetch
        self._clock = clock
        self._lock = threading.Lock()
        self._token: _Token | None = None

    def get(self) -> str:
        """The current token, fetched first if there is none or it is about to expire."""
        with self._lock:
            if self._token is None or self._clock() >= self._token.renew_at:
                value, expires_in = self._fetch()
                margin = min(TOKEN_MARGIN_SECONDS, expires_in / 10)
                self._token = _Token(value, self._clock() + max(expires_in - margin, 0.0))
            return self._token.value

    def renew(self, rejected: str) -> str:
        """A token after Orange refused `rejected`; another thread may already have renewed it."""
        with self._lock:
            if self._token is not None and self._token.value == rejected:
                self._token = None
        return self.get()


class OrangeGateway:
    """SmsGateway for Orange's SMS API (or the local emulator's Orange face)."""

    def __init__(
        self,
        api_url: str,
        client_id: str,
        client_secret: str,
        sender_address: str,
        sender_name: str,
        timeout_seconds: float,
    ) -> None:
        if timeout_seconds <= 0:
            raise ValueError("timeout_seconds must be positive: an unbounded send blocks a worker")
        self.api_url = api_url.rstrip("/")
        self.endpoint = urlsplit(self.api_url).netloc  # for logs: host only
        self.timeout_seconds = timeout_seconds
        self.sender_address = tel(sender_address)
        self.sender_name = sender_name
        self._auth = (client_id, client_secret)
        self._session = requests.Session()
        self.tokens = TokenCache(self._fetch_token)
        self._send_url = (
            f"{self.api_url}/smsmessaging/v1/outbound/{quote(self.sender_address, safe='')}/requests"
        )

    def send(self, sms: OutgoingSms) -> SendResult:
        """Send one SMS; a 401 renews the token once and sends once more. Failures are returned."""
        try:
            token = self.tokens.get()
            response = self._post(sms, token)
            if response.status_code == 401:
                log.info("orange token refused: renewing it once")
                response = self._post(sms, self.tokens.renew(token))
        except TokenError as exc:
            return _log(exc.result)
        except requests.RequestException as exc:
            return _log(unanswered(exc, self.endpoint, self.timeout_seconds))
        return _log(result_from_response(response.status_code, response.text, sms, response.headers))

    def balance(self) -> int | None:
        """SMS units left in the Malian bundles; None when Orange cannot tell us right now."""
        try:
            token = self.tokens.get()
            response = self._contracts(token)
            if response.status_code == 401:
                response = self._contracts(self.tokens.renew(token))
            if response.status_code != 200:
                log.warning("orange contracts answered HTTP %s", response.status_code)
                return None
            return units_left(response.json())
        except (TokenError, requests.RequestException, ValueError) as exc:
            log.warning("orange balance unknown: %s", type(exc).__name__)
            return None

    def _contracts(self, token: str) -> requests.Response:
        headers = {"Authorization": f"Bearer {token}", "Accept": "application/json"}
        url = self.api_url + CONTRACTS_PATH
        return self._session.get(
            url, headers=headers, params={"country": COUNTRY}, timeout=self.timeout_seconds
        )

    def close(self) -> None:
        """Release the pooled connection (workers call this before exiting)."""
        self._session.close()

    def _post(self, sms: OutgoingSms, token: str) -> requests.Response:
        body = {
            "outboundSMSMessageRequest": {
                "address": tel(sms.to),
                "senderAddress": self.sender_address,
                "senderName": sms.sender or self.sender_name,
                "outboundSMSTextMessage": {"message": sms.text},
            }
        }
        headers = {"Authorization": f"Bearer {token}", "Accept": "application/json"}
        return self._session.post(self._send_url, json=body, headers=headers, timeout=self.timeout_seconds)

    def _fetch_token(self) -> tuple[str, float]:
        try:
            response = self._session.post(
                self.api_url + TOKEN_PATH,
                data={"grant_type": "client_credentials"},
                auth=self._auth,
                headers={"Accept": "application/json"},
                timeout=self.timeout_seconds,
            )
        except requests.Timeout:
            detail = f"no token from {self.endpoint} within {self.timeout_seconds:g}s"
            raise TokenError(failed(Outcome.RETRY, "Timeout", None, detail=detail)) from None
        except requests.RequestException as exc:
            detail = f"cannot reach {self.endpoint} for a token: {type(exc).__name__}"
            raise TokenError(failed(Outcome.RETRY, type(exc).__name__, None, detail=detail)) from None
        status = response.status_code
        if status in (400, 401, 403):
            # Refused credentials need staff, not time: held (retried, and a coordinator sees it).
            detail = "token refused: check ORANGE_CLIENT_ID and ORANGE_CLIENT_SECRET"
            raise TokenError(failed(Outcome.HELD, f"HTTP {status}", status, detail=detail))
        try:
            data = response.json()
            return str(data["access_token"]), float(data.get("expires_in", 3600))
        except (ValueError, KeyError, TypeError):
            detail = f"token endpoint answered HTTP {status} without a token"
            raise TokenError(failed(Outcome.RETRY, f"HTTP {status}", status, detail=detail)) from None


def result_from_response(
    http_status: int, body: str, sms: OutgoingSms, headers: Mapping[str, str] | None = None
) -> SendResult:
    """Classify one answer of the send endpoint; pure, so tests can feed raw bodies."""
    if http_status == 201 or 200 <= http_status < 300:
        try:
            request = json.loads(body)["outboundSMSMessageRequest"]
            message_id = str(request["resourceURL"]).rstrip("/").rsplit("/", 1)[-1]
        except (ValueError, KeyError, TypeError):
            # As with Africa's Talking: retrying risks a duplicate, giving up risks a lost referral.
            return failed(Outcome.RETRY, f"HTTP {http_status}", http_status, detail="unreadable answer body")
        parts = segment_count(sms.text)
        return SendResult(Outcome.ACCEPTED, message_id, "Accepted", http_status, None, parts)
    reason = redact_numbers(_error_text(body))
    if http_status == 401:
        # Still refused with a token fetched a moment ago: the application's credentials or its
        # subscription to the API are wrong. Time will not fix that, staff will: held.
        return failed(Outcome.HELD, "HTTP 401", 401, detail=f"token refused after renewal: {reason}")
    if http_status == 403:
        # Orange's policy errors: bundle used up or expired, no contract for the country. The
        # message is fine and will go once staff buy a bundle: held, which keeps it and alerts.
        return failed(Outcome.HELD, "HTTP 403", 403, detail=f"bundle or contract: {reason}")
    if http_status == 429 or http_status >= 500:
        result = failed(Outcome.RETRY, f"HTTP {http_status}", http_status, detail=reason)
        return replace(result, retry_after=retry_after(headers or {}))
    if 400 <= http_status < 500:
        # SVC errors for this recipient (invalid address...): the same request can never succeed.
        return failed(Outcome.PERMANENT, f"HTTP {http_status}", http_status, detail=reason)
    return failed(Outcome.RETRY, f"HTTP {http_status}", http_status, detail="unexpected HTTP status")


def retry_after(headers: Mapping[str, str]) -> float | None:
    """Seconds Orange asked us to wait (Retry-After in seconds), capped at an hour; None if absent."""
    value = next((v for k, v in headers.items() if k.lower() == "retry-after"), None)
    try:
        seconds = float(value) if value is not None else None
    except ValueError:
        return None  # an HTTP date: rare enough that our own backoff will do
    if seconds is None or seconds < 0:
        return None
    return min(seconds, MAX_RETRY_AFTER_SECONDS)


def units_left(contracts: Any) -> int:
    """Sum `availableUnits` over the Malian SMS contracts Orange lists (either shape it publishes)."""
    if isinstance(contracts, dict):  # the older shape: partnerContracts.contracts[].serviceContracts[]
        items = [
            service
            for contract in contracts.get("partnerContracts", {}).get("contracts", [])
            for service in contract.get("serviceContracts", [])
        ]
    else:
        items = list(contracts)
    return sum(
        int(item.get("availableUnits", 0))
        for item in items
        if str(item.get("country", COUNTRY)).upper() == COUNTRY
    )


def tel(number: str) -> str:
    """`tel:+223...` as Orange writes addresses, from E.164 or from an address already written so."""
    number = number.strip()
    return number if number.startswith("tel:") else f"tel:{number}"


def delivery_fields(payload: Any) -> dict[str, str]:
    """A deliveryInfoNotification as the id, status and failureReason of an AT delivery report.

    The message id is the last segment of the request's `resourceURL`, as the send answered it;
    `callbackData` carries it when the notification has no resourceURL. Raises ValueError.
    """
    note = _object(payload, "deliveryInfoNotification")
    info = _object(note, "deliveryInfo")
    status = info.get("deliveryStatus")
    if not isinstance(status, str) or not status.strip():
        raise ValueError("missing field deliveryInfo.deliveryStatus")
    resource = note.get("resourceURL") or info.get("resourceURL")
    message_id = str(resource).rstrip("/").rsplit("/", 1)[-1] if resource else note.get("callbackData")
    if not isinstance(message_id, str) or not message_id.strip():
        raise ValueError("missing field resourceURL (or callbackData)")
    ours = DELIVERY_STATUSES.get(status.strip(), status.strip())
    return {"id": message_id, "status": ours, "failureReason": status.strip() if ours == "Failed" else ""}


def incoming_fields(payload: Any) -> dict[str, str]:
    """An inboundSMSMessageNotification as the form Africa's Talking posts. Raises ValueError."""
    message = _object(_object(payload, "inboundSMSMessageNotification"), "inboundSMSMessage")
    form: dict[str, str] = {}
    for ours, theirs in (("from", "senderAddress"), ("to", "destinationAddress"), ("text", "message"),
                         ("id", "messageId"), ("date", "dateTime")):  # fmt: skip
        value = message.get(theirs)
        if not isinstance(value, str):
            raise ValueError(f"missing field inboundSMSMessage.{theirs}")
        form[ours] = value.removeprefix("tel:") if theirs.endswith("Address") else value
    return form


def _object(parent: Any, name: str) -> dict[str, Any]:
    value = parent.get(name) if isinstance(parent, dict) else None
    if not isinstance(value, dict):
        raise ValueError(f"missing object {name}")
    return value


def _error_text(body: str) -> str:
    """Orange's reason: requestError.{service,policy}Exception.text, or the 401's description."""
    try:
        data = json.loads(body)
    except ValueError:
        return body[:200]
    if isinstance(data, dict):
        error = data.get("requestError", {})
        for kind in ("policyException", "serviceException"):
            if isinstance(error, dict) and isinstance(error.get(kind), dict):
                found = error[kind]
                return f"{found.get('messageId', '')} {found.get('text', '')}".strip()
        if "message" in data:
            return f"{data.get('code', '')} {data['message']}".strip()
    return body[:200]


def _log(result: SendResult) -> SendResult:
    """Log by gateway id only: the recipient's number never reaches a log line."""
    if result.outcome is Outcome.ACCEPTED:
        # At DEBUG: the send job logs the outcome with its route (workers/sms.py), one INFO line an SMS.
        log.debug("sms accepted by orange id=%s parts=%s", result.gateway_id, result.segments)
    else:
        log.warning("sms %s by orange status=%s: %s", result.outcome.value, result.status, result.detail)
    return result
