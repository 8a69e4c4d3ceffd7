"""The worker takes each job off its queues in one round trip to Redis, in the queues' order,
seen from Redis itself (MONITOR): a burst worker used to LPOP the empty `default` queue before
every SMS job."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable

from redis import Redis
from rq import Queue

from infra import queues
from tests.conftest import REDIS_URL
from workers.worker import Worker


def pops_seen(redis: Redis, run: Callable[[], object]) -> list[str]:
    """The pop commands Redis received on the test's database while `run` ran."""
    end = f"end-{uuid.uuid4().hex}"
    db = redis.connection_pool.connection_kwargs.get("db", 0)
    seen: list[str] = []
    ready = threading.Event()

    def watch() -> None:
        with Redis.from_url(REDIS_URL).monitor() as monitor:
            ready.set()
            for command in monitor.listen():
                if command["command"] == f"ECHO {end}":
                    return
                if command.get("db") == db and command["command"].split()[0] in ("LPOP", "LMPOP", "BLPOP"):
                    seen.append(command["command"])

    watcher = threading.Thread(target=watch)
    watcher.start()
    assert ready.wait(5), "MONITOR did not start"
    redis.ping()  # MONITOR is in place once the server has answered a command after it
    run()
    redis.echo(end)
    watcher.join(10)
    assert not watcher.is_alive(), "MONITOR never saw the end of the run"
    return seen


def test_a_burst_worker_takes_each_job_in_one_pop_even_with_the_default_queue_empty(redis: Redis) -> None:
    sms = Queue(queues.SMS, connection=redis)
    jobs = [sms.enqueue("math.sqrt", n) for n in (4, 9, 16)]
    pops = pops_seen(redis, lambda: Worker(list(queues.ALL), connection=redis).work(burst=True))
    assert [job.latest_result().return_value for job in jobs] == [2.0, 3.0, 4.0]
    # One pop per job and one that found both queues empty; never a pop of one queue at a time.
    assert len(pops) == len(jobs) + 1 and all(p.startswith("LMPOP 2 ") for p in pops), pops


def test_the_default_queue_is_still_served_first(redis: Redis) -> None:
    sms, default = Queue(queues.SMS, connection=redis), Queue(queues.DEFAULT, connection=redis)
    later = sms.enqueue("math.sqrt", 4)
    first = default.enqueue("math.sqrt", 9)
    Worker(list(queues.ALL), connection=redis).work(burst=True)
    first.refresh()
    later.refresh()
    assert first.ended_at and later.started_at and first.ended_at <= later.started_at
