"""Thin HTTP layer: gateway callbacks and, later, the admin."""

from flask import Response


def plain(body: str, status: int = 200) -> Response:
    """The text/plain answer every gateway callback gives (the gateway reads no HTML)."""
    return Response(body, status=status, mimetype="text/plain")
