"""Thin HTTP layer: gateway callbacks and, later, the admin."""

from flask import Flask, Request, Response
from flask.sessions import SessionInterface, SessionMixin


def plain(body: str, status: int = 200) -> Response:
    """The text/plain answer every gateway callback gives (the gateway reads no HTML)."""
    return Response(body, status=status, mimetype="text/plain")


class NoCookieSession(SessionInterface):
    """Flask's signed-cookie session, switched off: nothing in Sira uses it (the admin keeps its
    sessions in Redis), and the default one builds a signer on every request, USSD steps included.
    """

    def open_session(self, app: Flask, request: Request) -> None:
        return None  # Flask then uses a null session, which refuses to be written to

    def save_session(self, app: Flask, session: SessionMixin, response: Response) -> None:
        return None
