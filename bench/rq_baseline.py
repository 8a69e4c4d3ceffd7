"""The baseline for `bench.sms_delivery`: a job that does nothing, run by a worker built like Sira's.

RQ forks a work-horse per job, and the cost of a fork grows with the parent's memory, so the bare
worker loads the same Flask app and checks the same services as `flask --app app worker --burst`
before it works; the only difference left between the two runs is the job itself.

    python -m bench.rq_baseline --queue sira-bench-bare   # burst: stops once the queue is empty
"""

from __future__ import annotations

import argparse

from web.context import sira

BARE_QUEUE = "sira-bench-bare"


def noop(i: int) -> int:
    """RQ job: nothing beyond what RQ itself does (fetch, fork, run, store the result)."""
    return i


def main(argv: list[str] | None = None) -> None:
    """Mirror cli.worker_command in burst mode, on the bare queue only (same env, same app)."""
    p = argparse.ArgumentParser(prog="python -m bench.rq_baseline", description=__doc__.split("\n\n")[0])
    p.add_argument("--queue", default=BARE_QUEUE, help=f"queue to empty (default {BARE_QUEUE})")
    args = p.parse_args(argv)

    from rq import Queue, Worker

    from app import create_app
    from infra.health import require_services

    app = create_app()
    sessions, redis = sira(app).sessions, sira(app).redis
    with app.app_context():
        require_services(sessions, redis)
        worker = Worker([Queue(args.queue, connection=redis)], connection=redis)
        worker.work(burst=True, with_scheduler=True)


if __name__ == "__main__":
    main()
