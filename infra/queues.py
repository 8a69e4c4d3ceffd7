"""Queue names and enqueue helpers, in one place; every enqueue and every worker refers to these.

Jobs carry ids only: job arguments and failed-job tracebacks sit in Redis for a long time.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from redis import Redis
from redis.exceptions import RedisError
from rq import Queue, Retry
from sqlalchemy.orm import Session

from infra import keys
from infra.keys import sms_job_id
from infra.logs import REQUEST_ID_META, current_request_id

if TYPE_CHECKING:
    from config import Settings

log = logging.getLogger(__name__)

SMS = keys.SMS_QUEUE
DEFAULT = keys.DEFAULT_QUEUE
ALL = keys.QUEUES  # in the order a worker serves them

SMS_JOB_TIMEOUT = 60


def sms_retry(seconds: Sequence[int]) -> Retry:
    """RQ's retry policy for a send job, from SMS_RETRY_INTERVALS (the settings' tuple)."""
    return Retry(max=len(seconds), interval=list(seconds))


@dataclass(frozen=True)
class Outbox:
    """Queues the send jobs of outbox rows, with the retry policy and time-out of the settings.

    Built once (the app's in `create_app`, a job's from its settings and connection), so that no
    caller spells the policy again. Queue only after the rows are committed: a job that runs
    before the commit finds nothing to send (the sweeper would send it later, but late).
    """

    redis: Redis
    retry_intervals: tuple[int, ...]
    job_timeout: int = SMS_JOB_TIMEOUT

    @classmethod
    def from_settings(cls, redis: Redis, settings: Settings) -> Outbox:
        return cls(redis, settings.sms_retry_intervals, settings.sms_job_timeout_seconds)

    def queue(self, sms_ids: Iterable[int]) -> bool:
        """Queue a send job per committed row; False if Redis is down (the sweeper will queue them)."""
        ids = list(sms_ids)
        if not ids:
            return True
        retry = sms_retry(self.retry_intervals)
        request_id = current_request_id()
        meta = {REQUEST_ID_META: request_id} if request_id else None
        queue = Queue(SMS, connection=self.redis)
        try:
            queue.enqueue_many(
                [
                    Queue.prepare_data(
                        "workers.sms.send_sms",
                        args=(sms_id,),
                        job_id=sms_job_id(sms_id),
                        retry=retry,
                        timeout=self.job_timeout,
                        result_ttl=3600,
                        failure_ttl=7 * 86400,
                        meta=meta,
                    )
                    for sms_id in ids
                ]
            )
        except RedisError:
            log.warning("redis unavailable: %d SMS left for the outbox sweeper", len(ids))
            return False
        return True

    def send_after_commit(self, session: Session, sms_ids: Iterable[int]) -> bool:
        """Commit the session's transaction (the rows and what caused them), then queue the rows."""
        ids = list(sms_ids)
        session.commit()
        return self.queue(ids)
