"""The baseline: a bare Flask endpoint that does what any webhook must, and nothing of Sira's.

Served by gunicorn with the same settings as the app, it gives the ceiling that Flask, gunicorn,
the loopback and the load driver allow on this machine, so the app's figure reads as a ratio.
"""

from __future__ import annotations

from flask import Flask, Response, request


def create_app() -> Flask:
    """`gunicorn "bench.bare_app:create_app()"`: POST /ussd parses the form and says hello."""
    app = Flask(__name__)

    @app.post("/ussd")
    def ussd() -> Response:
        request.form.to_dict()  # the real webhook parses the same form; keep that cost in the baseline
        return Response("CON hello", mimetype="text/plain")

    return app
