"""`GET /healthz`: what a load balancer or a coordinator asks before anything else."""

from __future__ import annotations

from flask import Blueprint, current_app, jsonify
from flask.typing import ResponseReturnValue

from infra.health import check_database, check_redis

bp = Blueprint("health", __name__)


@bp.get("/healthz")
def healthz() -> ResponseReturnValue:
    settings = current_app.extensions["sira.settings"]
    checks = {
        "database": check_database(current_app.extensions["sira.sessions"]),
        "redis": check_redis(current_app.extensions["sira.redis"]),
    }
    down = [name for name, error in checks.items() if error]
    body = {
        "status": "ok" if not down else "down: " + ", ".join(down),
        "env": settings.env,
        **{name: error or "ok" for name, error in checks.items()},
    }
    return jsonify(body), 503 if down else 200
