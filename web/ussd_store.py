"""USSD session state in Redis, advanced with compare-and-set so racing requests cannot both win.

Two round trips a step: one to read the session (and, on a first request, the phone's
suspended session), one Lua call that writes the new state only if nobody else did since, and
keeps or clears the phone's resume copy in the same call. Keys hold only the keyed phone hash;
values are encrypted (AES-GCM), since a session holds answers such as a first name.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from redis import Redis
from redis.exceptions import RedisError

from flows.engine import State

_CAS = """
local current = redis.call('HGET', KEYS[1], 'v')
if (current or '') ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[1], 'v', ARGV[2], 's', ARGV[3])
redis.call('EXPIRE', KEYS[1], ARGV[4])
if ARGV[5] == 'keep' then
  redis.call('SET', KEYS[2], ARGV[3], 'EX', ARGV[6])
elseif ARGV[5] == 'drop' then
  redis.call('DEL', KEYS[2])
end
return 1
"""


@dataclass
class Loaded:
    """What was found for a request: the session's state and version, or the phone's suspended one."""

    state: State | None
    version: str
    suspended: State | None
    available: bool = True


class UssdStore:
    """Reads and writes session states; every failure of Redis is reported, never raised."""

    def __init__(self, redis: Redis, session_ttl: int, resume_ttl: int, secret: str) -> None:
        self.redis = redis
        self._aead = AESGCM(hashlib.sha256(b"sira-ussd-state:" + secret.encode()).digest())
        self.session_ttl = session_ttl
        self.resume_ttl = resume_ttl
        self._cas = redis.register_script(_CAS)

    @staticmethod
    def _keys(session_id: str, phone_digest: str) -> tuple[str, str]:
        return f"ussd:s:{session_id}", f"ussd:resume:{phone_digest}"

    def load(self, session_id: str, phone_digest: str) -> Loaded:
        key, resume_key = self._keys(session_id, phone_digest)
        try:
            pipe = self.redis.pipeline(transaction=False)
            pipe.hmget(key, "v", "s")
            pipe.get(resume_key)
            (version, raw), suspended = pipe.execute()
        except RedisError:
            return Loaded(None, "", None, available=False)
        state = self._open(raw)
        return Loaded(
            state=state,
            version=(version or b"").decode(),
            suspended=self._open(suspended) if state is None else None,
        )

    def _seal(self, state: State) -> bytes:
        nonce = os.urandom(12)
        return nonce + self._aead.encrypt(nonce, state.to_json().encode(), None)

    def _open(self, blob: bytes | None) -> State | None:
        """The state in `blob`, or None if there is none or it cannot be read (key rotated)."""
        if not blob:
            return None
        try:
            return State.from_json(self._aead.decrypt(blob[:12], blob[12:], None))
        except (InvalidTag, ValueError):
            return None

    def save(self, session_id: str, phone_digest: str, old_version: str, state: State) -> bool | None:
        """Write `state` if the session is still at `old_version`: True won, False lost, None down."""
        key, resume_key = self._keys(session_id, phone_digest)
        new_version = str(int(old_version or 0) + 1)
        resume = "leave" if state.suspended is not None else "keep" if state.resumable else "drop"
        try:
            won = self._cas(
                keys=[key, resume_key],
                args=[old_version, new_version, self._seal(state), self.session_ttl, resume, self.resume_ttl],
            )
        except RedisError:
            return None
        return bool(won)

    def forget_phone(self, phone_digest: str) -> None:
        """Drop the phone's resumable session (erasure); its live sessions expire on their own."""
        with contextlib.suppress(RedisError):
            self.redis.delete(f"ussd:resume:{phone_digest}")

    def restore(self, session_id: str, phone_digest: str, version_now: str, previous: State | None) -> None:
        """Undo a saved step whose effects could not be committed, so a retry runs it again."""
        key, _ = self._keys(session_id, phone_digest)
        try:
            if previous is None:
                self.redis.delete(key)
            else:
                self.save(session_id, phone_digest, version_now, previous)
        except RedisError:
            pass
