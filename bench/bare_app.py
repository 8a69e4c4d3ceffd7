"""The baselines: a bare Flask endpoint that does what any webhook must, and nothing of Sira's.

Served by gunicorn with the same settings as the app, it gives the ceiling that Flask, gunicorn,
the loopback and the load driver allow on this machine, so the app's figure reads as a ratio.

`create_app(keeps_session=True)` also writes one Redis key per step, through the connection the
app's session store uses (`infra.connection.Direct`): the least a USSD service that keeps its
sessions in Redis must do. It shows how much of the app's cost one round trip to Redis is before
any of Sira's own work (`python -m bench.ussd_steps --bare session`).
"""

from __future__ import annotations

import os
from collections.abc import Callable

from flask import Flask, Response, request

SESSION_TTL = 60  # seconds: a bench run's sessions need no longer


def create_app(keeps_session: bool = False) -> Flask:
    """`gunicorn "bench.bare_app:create_app()"`: POST /ussd parses the form and says hello."""
    app = Flask(__name__)
    save = _session_writer(os.environ["REDIS_URL"]) if keeps_session else None

    @app.post("/ussd")
    def ussd() -> Response:
        form = request.form.to_dict()  # the real webhook parses the same form; keep that cost in the baseline
        if save is not None:
            save(form.get("sessionId", ""), form.get("text", ""))
        return Response("CON hello", mimetype="text/plain")

    return app


def _session_writer(redis_url: str) -> Callable[[str, str], None]:
    """One SET a step, with the app's time-outs, on a connection of the thread's own."""
    from infra.connection import Direct, redis_from_url

    direct = Direct(redis_from_url(redis_url))

    def save(session_id: str, text: str) -> None:
        direct.call(("SET", f"bench:bare:{session_id}", text, "EX", SESSION_TTL))

    return save
