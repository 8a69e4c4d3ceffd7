"""Queue names and enqueue helpers, in one place; every enqueue and every worker refers to these.

Jobs carry ids only: job arguments and failed-job tracebacks sit in Redis for a long time.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence

from redis import Redis
from redis.exceptions import RedisError
from rq import Queue, Retry

from infra import keys
from infra.keys import sms_job_id

log = logging.getLogger(__name__)

SMS = keys.SMS_QUEUE
DEFAULT = keys.DEFAULT_QUEUE
ALL = keys.QUEUES  # in the order a worker serves them

SMS_JOB_TIMEOUT = 60


def sms_retry(seconds: Sequence[int]) -> Retry:
    """RQ's retry policy for a send job, from SMS_RETRY_INTERVALS (the settings' tuple)."""
    return Retry(max=len(seconds), interval=list(seconds))


def enqueue_sms(
    redis: Redis, sms_ids: Iterable[int], retry_intervals: Sequence[int], job_timeout: int = SMS_JOB_TIMEOUT
) -> bool:
    """Queue a send job per outbox row; False if Redis is down (the sweeper will queue them)."""
    ids = list(sms_ids)
    if not ids:
        return True
    retry = sms_retry(retry_intervals)
    queue = Queue(SMS, connection=redis)
    try:
        queue.enqueue_many(
            [
                Queue.prepare_data(
                    "workers.sms.send_sms",
                    args=(sms_id,),
                    job_id=sms_job_id(sms_id),
                    retry=retry,
                    timeout=job_timeout,
                    result_ttl=3600,
                    failure_ttl=7 * 86400,
                )
                for sms_id in ids
            ]
        )
    except RedisError:
        log.warning("redis unavailable: %d SMS left for the outbox sweeper", len(ids))
        return False
    return True
