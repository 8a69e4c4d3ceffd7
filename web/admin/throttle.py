"""Login throttling that a stranger cannot turn against a real user, and a cap on password checks.

Failures are counted per source address, and per account *from that address* (the e-mail as
typed, so that unknown addresses are throttled alike and reveal nothing). After
`LOGIN_FREE_FAILURES` each further failure doubles the wait before that source may try again, up
to `LOGIN_MAX_DELAY_SECONDS`; a waiting source gets a 429 and no password check. The account
itself is never locked: its owner, from an address with no failures, signs in at once, whatever
a stranger who knows the e-mail keeps trying elsewhere.

Each argon2 check costs about 200 ms of CPU and 64 MiB: at most `PASSWORD_CHECKS` run at once
in a process; a login that cannot get a turn within `PASSWORD_CHECK_WAIT_SECONDS` gets a 503.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

from redis import Redis

PREFIX = "admin:login-failures:"


def _key(*parts: str) -> str:
    """The address and e-mail go into Redis only as a digest."""
    return PREFIX + hashlib.sha256("\x00".join(parts).encode()).hexdigest()


class LoginThrottle:
    def __init__(
        self,
        redis: Redis,
        free_failures: int = 3,
        max_delay_seconds: int = 900,
        checks: int = 2,
        check_wait_seconds: float = 2.0,
    ) -> None:
        self.redis, self.free, self.max_delay = redis, free_failures, max_delay_seconds
        self.check_wait = check_wait_seconds
        self._checks = threading.BoundedSemaphore(checks)

    def _keys(self, address: str, email: str) -> tuple[str, str]:
        return _key("address", address), _key("account", email.strip().lower(), address)

    def wait_seconds(self, address: str, email: str) -> int:
        """How long this source must still wait before its next try at this account (0: none)."""
        now = time.time()
        pipe = self.redis.pipeline()
        for key in self._keys(address, email):
            pipe.hmget(key, "n", "at")
        waits = [0.0]
        for count, last in pipe.execute():
            if count is not None and int(count) > self.free:
                delay = min(2 ** (int(count) - self.free), self.max_delay)
                waits.append(float(last) + delay - now)
        return max(0, int(max(waits) + 0.999))

    def failed(self, address: str, email: str) -> None:
        """Count a failure against the address and the account from that address."""
        pipe = self.redis.pipeline()
        for key in self._keys(address, email):
            pipe.hincrby(key, "n", 1)
            pipe.hset(key, "at", repr(time.time()))
            pipe.expire(key, 2 * self.max_delay)  # forgotten after a long enough quiet spell
        pipe.execute()

    def succeeded(self, address: str, email: str) -> None:
        """The right password clears this source's record for the account (not for the address)."""
        self.redis.delete(self._keys(address, email)[1])

    @contextmanager
    def password_check(self) -> Iterator[bool]:
        """A turn to run one argon2 check; False if none came free in time (answer 503)."""
        acquired = self._checks.acquire(timeout=self.check_wait)
        try:
            yield acquired
        finally:
            if acquired:
                self._checks.release()
