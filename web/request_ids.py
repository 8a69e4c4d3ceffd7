"""Every web request has an id: nginx's `X-Request-Id` if it sends one, else our own; it is on
each log line of the request, on the jobs the request queues, and on the response's header.

A WSGI wrapper rather than three Flask hooks (before, after, teardown): it does the same once
per request for a fraction of the CPU, which every USSD step pays (measured in bench/README.md).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from flask import Flask

from infra.logs import bind_request_id, clear_request_id

if TYPE_CHECKING:  # the standard WSGI types, as werkzeug's own middleware uses them
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

HEADER = "X-Request-Id"
_ENVIRON_KEY = "HTTP_" + HEADER.upper().replace("-", "_")


class RequestIds:
    """Binds the request's id for everything the request does, and names it on the response."""

    def __init__(self, wsgi_app: WSGIApplication) -> None:
        self.wsgi_app = wsgi_app

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        header = (HEADER, bind_request_id(environ.get(_ENVIRON_KEY)))

        def start(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            headers.append(header)
            return start_response(status, headers, exc_info)

        try:
            return self.wsgi_app(environ, start)
        finally:
            clear_request_id()


def init_app(app: Flask) -> None:
    app.wsgi_app = RequestIds(app.wsgi_app)  # type: ignore[method-assign]
