"""USSD session state in Redis, advanced with compare-and-set so racing requests cannot both win.

Two round trips a step: one to read the session (on a fresh dial, also the phone's suspended
session and its cached profile), one Lua call that writes the new state only if nobody else did
since, keeps or clears the phone's resume copy, appends the step to the transcript buffer and
caches the profile, all at once. Keys hold only the keyed phone hash; values are sealed
(AES-GCM), since a session holds a first name.

The profile (language, registered, latest referrals) saves a database query on each dial; it
lives a few minutes and is dropped whenever the returnee or their referrals change.
"""

from __future__ import annotations

import contextlib
import json
from dataclasses import dataclass

from redis import Redis
from redis.exceptions import RedisError

from flows.engine import State
from services.sealing import Sealer
from services.transcripts import ERASED_TTL_SECONDS, STEP_BUFFER, erased_key
from web.limits import RateLimit

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
if ARGV[7] ~= '' then redis.call('RPUSH', KEYS[3], ARGV[7]) end
if ARGV[8] ~= '' then redis.call('SET', KEYS[4], ARGV[8], 'EX', ARGV[9]) end
return 1
"""


@dataclass
class Loaded:
    """What was found for a request: the session's state and version, or the phone's suspended one."""

    state: State | None
    version: str
    suspended: State | None
    available: bool = True
    sealed: bytes | None = None
    profile: dict | None = None
    limited: bool = False  # the phone is over its rate limit: the step must not run


class UssdStore:
    """Reads and writes session states; every failure of Redis is reported, never raised."""

    PROFILE_TTL = 600

    def __init__(self, redis: Redis, session_ttl: int, resume_ttl: int, secret: str) -> None:
        self.redis = redis
        self.sealer = Sealer(secret, "ussd-state")
        self.profiles = Sealer(secret, "ussd-profile")
        self.session_ttl = session_ttl
        self.resume_ttl = resume_ttl
        self._cas = redis.register_script(_CAS)

    @staticmethod
    def _keys(session_id: str, phone_digest: str) -> tuple[str, str]:
        return f"ussd:s:{session_id}", f"ussd:resume:{phone_digest}"

    @staticmethod
    def _profile_key(phone_digest: str) -> str:
        return f"ussd:profile:{phone_digest}"

    def load(
        self, session_id: str, phone_digest: str, with_resume: bool, limit: RateLimit | None = None
    ) -> Loaded:
        """The session's state; on a fresh dial (`with_resume`) also the phone's suspended one.

        With `limit`, the step is counted against the phone's rate limit in the same round trip.
        """
        key, resume_key = self._keys(session_id, phone_digest)
        suspended = profile = None
        try:
            pipe = self.redis.pipeline(transaction=False)
            pipe.hmget(key, "v", "s")
            if with_resume:
                pipe.get(resume_key)
                pipe.get(self._profile_key(phone_digest))
            counted = limit is not None and limit.stage(pipe, phone_digest)
            results = pipe.execute()
        except RedisError:
            return Loaded(None, "", None, available=False)
        version, raw = results[0]
        if with_resume:
            suspended, profile = results[1], results[2]
        state = self.open(raw)
        return Loaded(
            state=state,
            version=(version or b"").decode(),
            suspended=self.open(suspended) if state is None else None,
            sealed=raw,
            profile=json.loads(data) if (data := self.profiles.open(profile)) else None,
            limited=counted and limit.exceeded(results[-2]),
        )

    def open(self, blob: bytes | None) -> State | None:
        """The state in `blob`; None when absent or unreadable (another key, an older shape)."""
        data = self.sealer.open(blob)
        if not data:
            return None
        try:
            return State.from_json(data)
        except (TypeError, ValueError):
            return None

    def save(
        self,
        session_id: str,
        phone_digest: str,
        old_version: str,
        state: State,
        step: bytes | None = None,
        profile: dict | None = None,
    ) -> bool | None:
        """Write `state` (buffer `step`, cache `profile`) if the session is still at `old_version`.

        True: saved; False: another request advanced the session first; None: Redis is down.
        """
        key, resume_key = self._keys(session_id, phone_digest)
        new_version = str(int(old_version or 0) + 1)
        resume = "leave" if state.suspended is not None else "keep" if state.resumable else "drop"
        sealed = self.sealer.seal(state.to_json().encode())
        try:
            won = self._cas(
                keys=[key, resume_key, STEP_BUFFER, self._profile_key(phone_digest)],
                args=[
                    old_version,
                    new_version,
                    sealed,
                    self.session_ttl,
                    resume,
                    self.resume_ttl,
                    step or b"",
                    self.profiles.seal(json.dumps(profile).encode()) if profile else b"",
                    self.PROFILE_TTL,
                ],
            )
        except RedisError:
            return None
        return bool(won)

    def forget_phone(self, phone_digest: str) -> None:
        """Erasure: drop the phone's resumable session and profile, and leave a tombstone so that
        its steps still in the buffer are not written back (live sessions expire on their own)."""
        with contextlib.suppress(RedisError):
            pipe = self.redis.pipeline()
            pipe.delete(f"ussd:resume:{phone_digest}", self._profile_key(phone_digest))
            pipe.set(erased_key(phone_digest), "1", ex=ERASED_TTL_SECONDS)
            pipe.execute()

    def forget_profile(self, *phone_digests: str) -> None:
        """The returnee or their referrals changed: the next dial reads the database."""
        if phone_digests:
            with contextlib.suppress(RedisError):
                self.redis.delete(*(self._profile_key(d) for d in phone_digests))
