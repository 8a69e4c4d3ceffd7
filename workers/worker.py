"""Sira's RQ worker: RQ's non-forking SimpleWorker, with each job's log lines carrying the id of
the web request that queued it (from the job's meta)."""

from __future__ import annotations

from rq import Queue, SimpleWorker
from rq.job import Job

from infra.logs import REQUEST_ID_META, bind_request_id, clear_request_id


class Worker(SimpleWorker):
    def execute_job(self, job: Job, queue: Queue) -> None:
        given = job.meta.get(REQUEST_ID_META)
        if given:
            bind_request_id(str(given))
        try:
            super().execute_job(job, queue)
        finally:
            clear_request_id()
