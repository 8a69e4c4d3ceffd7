"""`GET /healthz`: what a load balancer or a coordinator asks before anything else.

Anyone may ask, so it says what is up or down and nothing about the deployment (not even which
environment it is: a `testing` or `development` answer would point at a weaker instance).
"""

from __future__ import annotations

from flask import Blueprint, jsonify
from flask.typing import ResponseReturnValue

from infra.health import check_database, check_redis
from web.context import sira

bp = Blueprint("health", __name__)


@bp.get("/healthz")
def healthz() -> ResponseReturnValue:
    checks = {
        "database": check_database(sira().sessions),
        "redis": check_redis(sira().redis),
    }
    down = [name for name, error in checks.items() if error]
    body = {
        "status": "ok" if not down else "down: " + ", ".join(down),
        **{name: error or "ok" for name, error in checks.items()},
    }
    return jsonify(body), 503 if down else 200
