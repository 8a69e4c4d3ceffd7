"""What the emulator remembers: the messages it carried and the faults it was told to inject."""

from __future__ import annotations

import random
import threading
from dataclasses import asdict, dataclass, fields
from typing import Any

# Per-recipient rejections Africa's Talking reports inside a 2xx answer, with their codes.
REJECT_CODES = {
    "RiskHold": 401,
    "InvalidSenderId": 402,
    "InvalidPhoneNumber": 403,
    "UnsupportedNumberType": 404,
    "InsufficientBalance": 405,
    "UserInBlacklist": 406,
    "CouldNotRoute": 407,
    "DoNotDisturbRejection": 409,
    "InternalServerError": 500,
    "GatewayError": 501,
    "RejectedByGateway": 502,
}


@dataclass
class Faults:
    """What goes wrong, settable at run time; rates draw from a seeded random, fail_next is exact."""

    http_500_rate: float = 0.0
    timeout_rate: float = 0.0
    timeout_seconds: float = 10.0
    reject_rate: float = 0.0
    reject_status: str = "InvalidPhoneNumber"
    fail_next: int = 0
    delivery_failure_rate: float = 0.0
    delivery_failure_reason: str = "UserInBlacklist"
    # Orange's face: how long its tokens live, the SMS bundle left, and 429s with Retry-After.
    orange_token_ttl: float = 3600.0
    orange_balance: int = 1000
    throttle_next: int = 0
    retry_after_seconds: float = 1.0

    def update(self, changes: dict[str, Any]) -> None:
        """Apply a partial update, checking every value first so a bad request changes nothing."""
        unknown = set(changes) - {f.name for f in fields(self)} - {"seed", "expire_tokens"}
        if unknown:
            raise ValueError(f"unknown fault(s): {', '.join(sorted(unknown))}")
        checked: dict[str, Any] = {}
        for name, value in changes.items():
            if name in ("seed", "expire_tokens"):
                continue
            if name.endswith("_rate"):
                if not isinstance(value, int | float) or not 0 <= value <= 1:
                    raise ValueError(f"{name} must be a number between 0 and 1")
                checked[name] = float(value)
            elif name in ("timeout_seconds", "orange_token_ttl", "retry_after_seconds"):
                if not isinstance(value, int | float) or isinstance(value, bool) or value < 0:
                    raise ValueError(f"{name} must be a non-negative number")
                checked[name] = float(value)
            elif name in ("fail_next", "orange_balance", "throttle_next"):
                if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                    raise ValueError(f"{name} must be a non-negative integer")
                checked[name] = value
            elif name == "reject_status":
                if value not in REJECT_CODES:
                    raise ValueError(f"reject_status must be one of {', '.join(REJECT_CODES)}")
                checked[name] = value
            else:
                if not isinstance(value, str) or not value:
                    raise ValueError(f"{name} must be a non-empty string")
                checked[name] = value
        for name, value in checked.items():
            setattr(self, name, value)


@dataclass(frozen=True)
class Decision:
    """The faults drawn for one send request."""

    generation: int
    http_500: bool
    delay: float
    reject_status: str | None
    delivery_failures: tuple[str | None, ...]  # per recipient: None, or the failureReason to report


class EmulatorState:
    """Messages, faults and the random source, behind one lock (the server is threaded)."""

    def __init__(self, seed: int) -> None:
        self.lock = threading.Lock()
        self.messages: list[dict[str, Any]] = []
        self.faults = Faults()
        self.seed = seed
        self.rng = random.Random(seed)
        # Bumped by reset: work started before a reset (a slow "timeout" answer, a pending delivery
        # report) must not leak into the next test.
        self.generation = 0
        # Orange's bearer tokens: token -> time.monotonic() it expires; and how many were issued.
        self.tokens: dict[str, float] = {}
        self.tokens_issued = 0

    def reset(self) -> None:
        """Forget messages and faults, and restart the random sequence from the seed."""
        with self.lock:
            self.messages.clear()
            self.faults = Faults()
            self.rng = random.Random(self.seed)
            self.generation += 1
            self.tokens.clear()
            self.tokens_issued = 0

    def clear_messages(self) -> None:
        with self.lock:
            self.messages.clear()
            self.generation += 1

    def current_generation(self) -> int:
        with self.lock:
            return self.generation

    def configure(self, changes: dict[str, Any]) -> dict[str, Any]:
        """Apply a partial fault update (all or nothing) and return the faults now in force."""
        seed = changes.get("seed")
        if seed is not None and (not isinstance(seed, int) or isinstance(seed, bool)):
            raise ValueError("seed must be an integer")
        if changes.get("expire_tokens") not in (None, True):
            raise ValueError("expire_tokens must be true: every Orange token issued so far then gets a 401")
        with self.lock:
            self.faults.update(changes)
            if changes.get("expire_tokens"):
                self.tokens.clear()
            if seed is not None:
                self.seed = seed
                self.rng = random.Random(seed)
            return self._faults_view()

    def faults_view(self) -> dict[str, Any]:
        with self.lock:
            return self._faults_view()

    def _faults_view(self) -> dict[str, Any]:
        return asdict(self.faults) | {"seed": self.seed, "tokens_issued": self.tokens_issued}

    def decide(self, recipients: int) -> Decision:
        """Draw, in a fixed order, what goes wrong with one send request."""
        with self.lock:
            faults = self.faults
            if faults.fail_next > 0:
                faults.fail_next -= 1
                http_500 = True
            else:
                http_500 = self._draw(faults.http_500_rate)
            delay = faults.timeout_seconds if not http_500 and self._draw(faults.timeout_rate) else 0.0
            rejected = self._draw(faults.reject_rate)
            undelivered = tuple(self._draw(faults.delivery_failure_rate) for _ in range(recipients))
            return Decision(
                generation=self.generation,
                http_500=http_500,
                delay=delay,
                reject_status=faults.reject_status if rejected else None,
                delivery_failures=tuple(faults.delivery_failure_reason if u else None for u in undelivered),
            )

    def issue_token(self, token: str, expires_at: float) -> None:
        with self.lock:
            self.tokens[token] = expires_at
            self.tokens_issued += 1

    def token_valid(self, token: str, now: float) -> bool:
        with self.lock:
            return self.tokens.get(token, 0.0) > now

    def take_throttle(self) -> float | None:
        """Seconds of Retry-After if this Orange request is to get a 429, else None."""
        with self.lock:
            if self.faults.throttle_next > 0:
                self.faults.throttle_next -= 1
                return self.faults.retry_after_seconds
            return None

    def spend(self, units: int) -> bool:
        """Take `units` from the Orange bundle; False (and nothing taken) when it cannot pay."""
        with self.lock:
            if self.faults.orange_balance < units:
                return False
            self.faults.orange_balance -= units
            return True

    def _draw(self, rate: float) -> bool:
        return rate > 0 and self.rng.random() < rate

    def add(self, record: dict[str, Any], generation: int) -> None:
        with self.lock:
            if generation == self.generation:
                self.messages.append(record)

    def set_status(self, message_id: str, status: str, failure_reason: str | None, generation: int) -> bool:
        """Record the delivery outcome; False when the message was cleared in the meantime."""
        with self.lock:
            if generation != self.generation:
                return False
            for record in self.messages:
                if record["id"] == message_id:
                    record["status"] = status
                    record["failure_reason"] = failure_reason
                    return True
        return False

    def snapshot(self) -> list[dict[str, Any]]:
        with self.lock:
            return [dict(m) for m in self.messages]
