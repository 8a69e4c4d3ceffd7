"""The one small interface through which jobs send an SMS, whatever the aggregator behind it.

A gateway answers with an `Outcome` instead of raising, because what the caller must do next
(retry with backoff, give up, or retry *and* alert a coordinator) is a property of the failure,
and only the adapter knows how its aggregator reports each one.

Phone numbers never go into exceptions, log lines or `SendResult.detail`: a returnee's number
is sensitive, and logs and failed-job registries are kept far longer than the message.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import requests


@dataclass(frozen=True)
class OutgoingSms:
    """One text to one phone."""

    to: str  # E.164: "+", the country code (223 for Mali), the subscriber number
    text: str
    sender: str | None = None  # short code or sender id; None lets the aggregator choose
    # Our id for this attempt, already on the outbox row when the gateway is called. An adapter
    # whose aggregator names no message (Kannel) uses it as the gateway id, so a delivery report
    # that arrives before the worker's commit still finds its message.
    reference: str | None = None

    def __repr__(self) -> str:
        # Keep the number out of tracebacks and debug logs that print the object.
        return (
            f"OutgoingSms(to=<redacted>, text=<{len(self.text)} chars>, sender={self.sender!r},"
            f" reference={self.reference!r})"
        )


class Outcome(enum.StrEnum):
    """What the caller must do with a message after one attempt."""

    ACCEPTED = "accepted"  # the aggregator took it; wait for the delivery report
    RETRY = "retry"  # transient: try again later, with backoff
    PERMANENT = "permanent"  # never retry: the number, sender id or route will not work
    HELD = "held"  # account-side (balance, risk hold, credentials): keep retrying and alert a coordinator


@dataclass(frozen=True)
class SendResult:
    """The gateway's answer to one send, in terms the outbox can store."""

    outcome: Outcome
    gateway_id: str | None  # the aggregator's message id, the key of later delivery reports
    status: str  # the gateway's status text, e.g. "Success", "InvalidPhoneNumber", "HTTP 503"
    status_code: int | None  # per-recipient code, or the HTTP status when the whole request failed
    cost: str | None  # as the aggregator wrote it, e.g. "XOF 25.0000"
    segments: int | None
    detail: str = ""  # human-readable reason, free of phone numbers
    retry_after: float | None = None  # seconds the gateway asked us to wait (HTTP Retry-After)


@runtime_checkable
class SmsGateway(Protocol):
    """Anything that can send one SMS and classify the answer."""

    def send(self, sms: OutgoingSms) -> SendResult:
        """Send one message; never raise for a gateway-side failure, return its outcome instead."""
        ...


def failed(outcome: Outcome, status: str, status_code: int | None, *, detail: str) -> SendResult:
    """A send the aggregator did not take: no gateway id, cost or parts to record."""
    return SendResult(outcome, None, status, status_code, None, None, detail)


def unanswered(exc: requests.RequestException, endpoint: str, timeout_seconds: float) -> SendResult:
    """A request that got no HTTP answer (time-out, no connection): transient, so retried.

    Described by the exception's type only: requests' messages quote the URL, which may hold the
    recipient's number or our credentials."""
    if isinstance(exc, requests.Timeout):
        return failed(
            Outcome.RETRY, "Timeout", None, detail=f"no answer from {endpoint} within {timeout_seconds:g}s"
        )
    if isinstance(exc, requests.ConnectionError):
        detail = f"cannot reach {endpoint}: {type(exc).__name__}"
        return failed(Outcome.RETRY, "ConnectionError", None, detail=detail)
    return failed(Outcome.RETRY, type(exc).__name__, None, detail=f"request to {endpoint} failed")


_NUMBER_LIKE = re.compile(r"\+?\d[\d ]{6,}\d")


def redact_numbers(text: str, limit: int = 200) -> str:
    """Strip anything that looks like a phone number from gateway text before it is stored or logged."""
    return _NUMBER_LIKE.sub("<number>", text)[:limit]
