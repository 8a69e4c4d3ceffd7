"""Every Redis key Sira writes, named once: what a dump of Redis may hold is read here.

A key that names a person holds only the keyed phone hash (`digest`), never the number. RQ's own
keys (`rq:...`) derive from the queue names and job ids below.
"""

from __future__ import annotations

# USSD sessions (infra/ussd_store.py): the state, the phone's suspended copy, its cached profile.
USSD_SESSION = "ussd:s:"
USSD_RESUME = "ussd:resume:"
USSD_PROFILE = "ussd:profile:"
# An erased phone's tombstone (infra/tombstones.py).
USSD_ERASED = "ussd:erased:"
# Transcript steps on their way to the database (services/transcripts.py, workers/transcripts.py).
STEP_BUFFER = "ussd:steps"
STEP_FLUSH_LOCK = "ussd:steps:flushing"
STEP_DEAD = "ussd:steps:dead"
# When this Redis's memory began (epoch seconds), set by the first USSD read that finds it absent:
# a young one may have forgotten sessions (restarted empty, or flushed; infra/ussd_store.py).
REDIS_BORN = "sira:redis-born"
# Per-phone rate counters (infra/ratelimit.py), one per kind and time window.
RATE_LIMIT = "limit:"
# Admin sessions (web/admin/sessions.py): by the SHA-256 of the cookie's id, and each user's set.
ADMIN_SESSION = "admin:session:"
ADMIN_USER_SESSIONS = "admin:user-sessions:"
# One-time password reset links (web/admin/passwords.py): by the SHA-256 of the link's token.
ADMIN_PASSWORD_RESET = "admin:password-reset:"

# The Orange SMS bundle left, as last checked (infra/balance.py), and the mark of a check on its way.
ORANGE_BALANCE = "sira:orange:balance"
ORANGE_BALANCE_ASKED = "sira:orange:balance:asked"

# SMS routes' health (gateway/routing.py), shared by every worker: failed sends in a row, the mark
# of a route skipped until its cool-down ends, the one probe after it, and hourly send counts.
SMS_ROUTE = "sira:route:"

# RQ queues, in the order a worker serves them: the cron's jobs (transcripts, sweep, deadlines)
# are few and quick, and must not wait behind a backlog of SMS.
DEFAULT_QUEUE = "default"
SMS_QUEUE = "sms"
QUEUES = (DEFAULT_QUEUE, SMS_QUEUE)

# Keys named by a phone hash that a rotation of PHONE_HASH_KEY drops (they would never be read again).
REHASH_DROPPED = (USSD_RESUME, USSD_PROFILE, RATE_LIMIT)


def ussd_session(session_id: str) -> str:
    return USSD_SESSION + session_id


def ussd_resume(digest: str) -> str:
    return USSD_RESUME + digest


def ussd_profile(digest: str) -> str:
    return USSD_PROFILE + digest


def ussd_erased(digest: str) -> str:
    """A tombstone: this phone was erased, so its buffered steps must not bring a session back."""
    return USSD_ERASED + digest


def rate_limit(kind: str, digest: str, slot: int) -> str:
    return f"{RATE_LIMIT}{kind}:{digest}:{slot}"


def no_rate_limit(digest: str) -> str:
    """A key the save script is given when no limit counts (it never touches it)."""
    return f"{RATE_LIMIT}none:{digest}"


def admin_session(hashed_id: str) -> str:
    return ADMIN_SESSION + hashed_id


def admin_user_sessions(user_id: int) -> str:
    return f"{ADMIN_USER_SESSIONS}{user_id}"


def route_failures(route: str) -> str:
    return f"{SMS_ROUTE}{route}:failures"


def route_down(route: str) -> str:
    return f"{SMS_ROUTE}{route}:down"


def route_probe(route: str) -> str:
    return f"{SMS_ROUTE}{route}:probe"


def route_counts(route: str, hour: int) -> str:
    """Sends and failures of a route in one hour (hours since the epoch)."""
    return f"{SMS_ROUTE}{route}:counts:{hour}"


def admin_password_reset(hashed_token: str) -> str:
    return ADMIN_PASSWORD_RESET + hashed_token


def sms_job_id(sms_id: int) -> str:
    """One send job per outbox row: queuing it twice is a no-op for RQ."""
    return f"sms-{sms_id}"


def cron_name(pid: int) -> str:
    return f"sira-cron-{pid}"
