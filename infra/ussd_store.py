"""USSD session state in Redis, advanced with compare-and-set so racing requests cannot both win.

Two round trips a step: one to read the session (on a fresh dial, also the phone's suspended
session and its cached profile), one Lua call that writes the new state only if nobody else did
since, keeps or clears the phone's resume copy, appends the step to the transcript buffer and
caches, refreshes or drops the profile, all at once. Both go through `Direct`, on a connection of
the thread's own: on loopback redis-py's client layer costs more CPU than the round trip. Keys
hold only the keyed phone hash; values are sealed (AES-GCM), since a session holds a first name.

A session open when its phone is erased (by SMS, or by staff) is keyed by its id, which erasure
does not know: the tombstone erasure leaves (see infra/forgetting.py) is read with the session,
and checked again by the save, so the session's next step deletes it instead of carrying it on.
A session also keeps the phone that opened it: the same id from another phone touches nothing.

Each process also remembers the states it saved last (`USSD_REMEMBERED_STATES` of them, unsealed,
in its own memory, for as long as Redis keeps them): the next step of a session, which a
keep-alive connection from the gateway brings back to the same process, then skips the read. The
copy is only a hint: the save still compares versions in Redis, and a step that loses reads Redis
again; a step with effects is always run from the state in Redis (see services/converse.py).
Measured in bench/README.md: without it a step costs ~0.1 ms more CPU, and the p99 at 100
sessions is 3-4 times longer.

The profile (language, registered, latest referrals) saves a database query on each dial; it
lives a few minutes and is dropped whenever the returnee or their referrals change. A USSD step
whose effects it can mirror (a registration) refreshes it instead, but only if it is still
there: a change made elsewhere in the meantime dropped it, and the next dial reads the database.
The profile is written whoever wins the session's state: it reflects the database, not the state.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, NamedTuple, Protocol, TypeVar

from redis import Redis
from redis.exceptions import RedisError

from infra import keys
from infra.connection import Direct, DirectScript
from infra.forgetting import begun_before_erasure, erased_at, forget_phone, forget_profiles
from infra.ratelimit import RateLimit
from infra.sealing import Sealer

_CAS = """
local meta = redis.call('HMGET', KEYS[1], 'v', 'b', 'p')
local current, born, owner = meta[1], meta[2], meta[3]
if owner and owner ~= ARGV[13] then return {0, 0} end
local erased = redis.call('GET', KEYS[6])
if erased and (current or born) and (tonumber(born) or 0) <= (tonumber(erased) or 0) then
  return {0, 0}
end
if ARGV[10] == 'drop' then
  redis.call('DEL', KEYS[4])
elseif ARGV[8] ~= '' and ARGV[10] == 'refresh' then
  redis.call('SET', KEYS[4], ARGV[8], 'EX', ARGV[9], 'XX')
elseif ARGV[8] ~= '' then
  redis.call('SET', KEYS[4], ARGV[8], 'EX', ARGV[9], 'NX')
end
if (current or '') ~= ARGV[1] then return {0, 0} end
local count = 0
if ARGV[11] ~= '' then
  count = redis.call('INCR', KEYS[5])
  if count == 1 then redis.call('EXPIRE', KEYS[5], ARGV[11]) end
end
if ARGV[1] == '' then  -- a new session: its birth and its phone, for erasure and ownership
  redis.call('HSET', KEYS[1], 'v', ARGV[2], 's', ARGV[3], 'b', ARGV[12], 'p', ARGV[13])
else
  redis.call('HSET', KEYS[1], 'v', ARGV[2], 's', ARGV[3])
end
redis.call('EXPIRE', KEYS[1], ARGV[4])
if ARGV[5] == 'keep' then
  redis.call('SET', KEYS[2], ARGV[3], 'EX', ARGV[6])
elseif ARGV[5] == 'drop' then
  redis.call('DEL', KEYS[2])
end
if ARGV[7] ~= '' then redis.call('RPUSH', KEYS[3], ARGV[7]) end
return {1, count}
"""


class SaveKeys(NamedTuple):
    """The save script's KEYS, in their order (KEYS[1] is `session`)."""

    session: str  # the state's hash: v(ersion), s(tate), b(irth), p(hone)
    resume: str  # the phone's resumable copy
    step_buffer: str  # the transcript buffer the step is appended to
    profile: str  # the phone's cached profile
    rate: str  # the phone's rate counter for this window (never touched when `rate_ttl` is '')
    erased: str  # the phone's erasure tombstone


class SaveArgs(NamedTuple):
    """The save script's ARGV, in their order (ARGV[1] is `old_version`)."""

    old_version: str  # '' for a new session
    new_version: str
    state: bytes  # sealed
    session_ttl: int
    resume: str  # keep | drop | leave: what becomes of the resumable copy
    resume_ttl: int
    step: bytes  # the sealed transcript line, or b'' for none
    profile: bytes  # the sealed profile, or b'' for none
    profile_ttl: int
    profile_mode: str  # cache (if absent) | refresh (if present) | drop
    rate_ttl: int | str  # '' when no limit counts
    born: str  # epoch seconds: a new session's birth, compared with an erasure's time
    phone: str  # the keyed phone hash that owns a new session


class StoredState(Protocol):
    """What the store needs of a session's state (the engine's `State` is one)."""

    suspended: dict | None

    @property
    def resumable(self) -> bool: ...

    @property
    def language(self) -> str: ...

    def to_json(self) -> bytes: ...


S = TypeVar("S", bound=StoredState)


@dataclass
class Loaded(Generic[S]):
    """What was found for a request: the session's state and version, or the phone's suspended one."""

    state: S | None
    version: str
    suspended: S | None
    available: bool = True
    profile: dict | None = None
    remembered: bool = False  # from this process's memory, not read from Redis
    limited: bool = False  # the phone is over its rate limit: the step must not run
    erased: str | None = None  # the phone was erased during this session, now gone: its language
    foreign: bool = False  # the session id is another phone's: the request must not touch it
    amnesic: bool = False  # Redis's memory is younger than a session: it may have forgotten this one


CACHE, REFRESH, DROP = "cache", "refresh", "drop"  # what a save does with the phone's profile


class UssdStore(Generic[S]):
    """Reads and writes session states; every failure of Redis is reported, never raised.

    `decode` reads a state back from its JSON (the engine's `State.from_json`): the store keeps
    states without knowing the conversation they belong to.
    """

    PROFILE_TTL = 600

    def __init__(
        self,
        redis: Redis,
        session_ttl: int,
        resume_ttl: int,
        secret: str,
        decode: Callable[[str | bytes], S],
        remembered: int,
    ) -> None:
        self.redis = redis
        self.remembered = remembered  # states kept in memory at most, the oldest forgotten first (0: none)
        self.decode = decode
        self.sealer = Sealer(secret, "ussd-state")
        self.profiles = Sealer(secret, "ussd-profile")
        self.session_ttl = session_ttl
        self.resume_ttl = resume_ttl
        self._direct = Direct(redis)
        self._cas = DirectScript(self._direct, _CAS)
        # (session id, phone): (until, version, state JSON, the rate count at that save, its window key)
        self._saved: dict[tuple[str, str], tuple[float, str, bytes, int, str]] = {}
        self._saved_lock = threading.Lock()
        self._born = 0.0  # when the Redis whose states this process remembers began its memory

    @staticmethod
    def _keys(session_id: str, phone_digest: str) -> tuple[str, str]:
        return keys.ussd_session(session_id), keys.ussd_resume(phone_digest)

    @staticmethod
    def _profile_key(phone_digest: str) -> str:
        return keys.ussd_profile(phone_digest)

    def load(
        self,
        session_id: str,
        phone_digest: str,
        with_resume: bool,
        remembered: bool = True,
        limit: RateLimit | None = None,
    ) -> Loaded[S]:
        """The session's state; on a fresh dial (`with_resume`) also the phone's suspended one.

        `remembered`: the state this process saved last will do, if it has it. `limit`: whether
        this step would take the phone over its rate limit, from the count its saves keep (read
        in the same round trip, or as the last save of this session left it).
        """
        if remembered and not with_resume and (copy := self._saved.get((session_id, phone_digest))):
            until, version, data, count, counted_in = copy
            if until > time.monotonic():
                # The count of this session's last save, if it was made in the current window.
                current = limit is not None and counted_in == limit.key(phone_digest)
                limited = current and limit.exceeded(count + 1)
                return Loaded(self.decode(data), version, None, remembered=True, limited=limited)
        key, resume_key = self._keys(session_id, phone_digest)
        suspended = profile = count = None
        counting = limit is not None and limit.applies_to(phone_digest)
        commands: list[tuple[str, ...]] = [
            ("HMGET", key, "v", "s", "b", "p"),
            ("GET", keys.ussd_erased(phone_digest)),
            ("SET", keys.REDIS_BORN, repr(time.time()), "NX"),
            ("GET", keys.REDIS_BORN),
        ]
        if with_resume:
            commands += [("GET", resume_key), ("GET", self._profile_key(phone_digest))]
        if counting:
            commands.append(("GET", limit.key(phone_digest)))
        try:
            replies = self._direct.call(*commands)
        except RedisError:
            return Loaded(None, "", None, available=False)
        if any(isinstance(reply, RedisError) for reply in replies):
            return Loaded(None, "", None, available=False)
        (version, raw, born, owner), erasure = replies[0], replies[1]
        amnesic = self._amnesic(replies[3])
        if owner is not None and owner.decode() != phone_digest:
            return Loaded(None, "", None, foreign=True)
        if (raw is not None or born is not None) and begun_before_erasure(
            float(born or 0), erased_at(erasure)
        ):
            return self._drop_erased(key, resume_key, self.open(raw))
        if with_resume:
            suspended, profile = replies[4], replies[5]
        if counting:
            count = replies[-1]
        state = self.open(raw)
        return Loaded(
            state=state,
            version=(version or b"").decode(),
            suspended=self.open(suspended) if state is None else None,
            profile=json.loads(data) if (data := self.profiles.open(profile)) else None,
            limited=counting and limit.exceeded(int(count or 0) + 1),
            amnesic=amnesic,
        )

    def _amnesic(self, mark: bytes | None) -> bool:
        """Whether Redis began its memory less than a session's life ago (restarted empty, or
        flushed). A new memory also drops the states this process remembers: they are of the old
        one, and no step may be answered from them."""
        try:
            born = float(mark) if mark else 0.0
        except ValueError:
            born = 0.0
        if born != self._born:
            with self._saved_lock:
                self._saved.clear()
            self._born = born
        return born > time.time() - self.session_ttl

    def _drop_erased(self, key: str, resume_key: str, state: S | None) -> Loaded[S]:
        """The session began before its phone was erased: what it holds goes too.

        Only its birth is kept, as before any erasure, so that a retry of the gateway (whose
        `text` still holds the answers) is refused too instead of replaying them into a new state.
        """
        try:
            self._direct.call(
                ("DEL", key, resume_key), ("HSET", key, "b", "0"), ("EXPIRE", key, self.session_ttl)
            )
        except RedisError:
            return Loaded(None, "", None, available=False)
        return Loaded(None, "", None, erased=(state.language if state else None) or "")

    def open(self, blob: bytes | None) -> S | None:
        """The state in `blob`; None when absent or unreadable (another key, an older shape)."""
        data = self.sealer.open(blob)
        if not data:
            return None
        try:
            return self.decode(data)
        except (TypeError, ValueError):
            return None

    def save(
        self,
        session_id: str,
        phone_digest: str,
        old_version: str,
        state: S,
        step: bytes | None = None,
        profile: dict | None = None,
        profile_mode: str = CACHE,
        limit: RateLimit | None = None,
    ) -> bool | None:
        """Write `state` (buffer `step`) if the session is still at `old_version`; in any case
        cache `profile` (CACHE), update it only if still cached (REFRESH), or drop it (DROP),
        and count the step against the phone's rate `limit`.

        True: saved; False: another request advanced the session first; None: Redis is down.
        """
        key, resume_key = self._keys(session_id, phone_digest)
        new_version = str(int(old_version or 0) + 1)
        resume = "leave" if state.suspended is not None else "keep" if state.resumable else "drop"
        data = state.to_json()
        sealed = self.sealer.seal(data)
        counting = limit is not None and limit.applies_to(phone_digest)
        limit_key = limit.key(phone_digest) if counting else keys.no_rate_limit(phone_digest)
        script_keys = SaveKeys(
            session=key,
            resume=resume_key,
            step_buffer=keys.STEP_BUFFER,
            profile=self._profile_key(phone_digest),
            rate=limit_key,
            erased=keys.ussd_erased(phone_digest),
        )
        args = SaveArgs(
            old_version=old_version,
            new_version=new_version,
            state=sealed,
            session_ttl=self.session_ttl,
            resume=resume,
            resume_ttl=self.resume_ttl,
            step=step or b"",
            profile=self.profiles.seal(json.dumps(profile).encode()) if profile else b"",
            profile_ttl=self.PROFILE_TTL,
            profile_mode=profile_mode,
            rate_ttl=limit.window + 1 if counting else "",
            born=repr(time.time()),
            phone=phone_digest,
        )
        try:
            won = self._cas(keys=list(script_keys), args=list(args))
        except RedisError:
            self._forget_saved((session_id, phone_digest))
            return None
        won, count = won
        if won:
            self._remember((session_id, phone_digest), new_version, data, int(count), limit_key)
        else:
            self._forget_saved((session_id, phone_digest))
        return bool(won)

    def _remember(
        self, session: tuple[str, str], version: str, data: bytes, count: int, counted_in: str
    ) -> None:
        if not self.remembered:
            return
        with self._saved_lock:
            self._saved.pop(session, None)  # re-inserted last: the dict stays in save order
            self._saved[session] = (time.monotonic() + self.session_ttl, version, data, count, counted_in)
            while len(self._saved) > self.remembered:
                del self._saved[next(iter(self._saved))]

    def _forget_saved(self, session: tuple[str, str]) -> None:
        with self._saved_lock:
            self._saved.pop(session, None)

    def forget_phone(self, phone_digest: str) -> None:
        """Erasure: see `infra.forgetting.forget_phone` (the spool's replay forgets without a store)."""
        forget_phone(self.redis, phone_digest)

    def forget_profile(self, *phone_digests: str) -> None:
        """The returnee or their referrals changed: the next dial reads the database."""
        forget_profiles(self.redis, *phone_digests)
