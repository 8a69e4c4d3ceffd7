"""Sira's RQ worker: RQ's non-forking SimpleWorker, with each job's log lines carrying the id of
the web request that queued it (from the job's meta), and taking a job off its queues in one
round trip to Redis whichever queue holds it."""

from __future__ import annotations

from collections.abc import Sequence

from redis import Redis
from rq import Queue, SimpleWorker
from rq.job import Job
from rq.utils import get_version

from infra.logs import REQUEST_ID_META, bind_request_id, clear_request_id

LMPOP_SINCE = (7, 0, 0)  # the Redis version that pops from the first non-empty of several lists


class OneTripQueue(Queue):
    """RQ's queue, whose non-blocking pop over several queues is one LMPOP.

    RQ pops each queue in turn when it must not block (a burst worker, the tests' and benches'
    workers): an SMS job then cost one more round trip, an LPOP of the empty `default` queue first.
    LMPOP keeps the same order (the first non-empty queue, from its head) in one command. A Redis
    older than 7 gets RQ's own loop.
    """

    @classmethod
    def lpop(
        cls, queue_keys: Sequence[str], timeout: int | None, connection: Redis | None = None
    ) -> tuple[str, bytes] | None:
        if timeout is not None or len(queue_keys) < 2 or connection is None:
            return super().lpop(queue_keys, timeout, connection=connection)
        if get_version(connection) < LMPOP_SINCE:
            return super().lpop(queue_keys, timeout, connection=connection)
        popped = connection.lmpop(len(queue_keys), *queue_keys, direction="LEFT")
        if popped is None:
            return None
        queue_key, [job_id] = popped
        return queue_key, job_id


class Worker(SimpleWorker):
    queue_class = OneTripQueue

    def execute_job(self, job: Job, queue: Queue) -> None:
        given = job.meta.get(REQUEST_ID_META)
        if given:
            bind_request_id(str(given))
        try:
            super().execute_job(job, queue)
        finally:
            clear_request_id()
