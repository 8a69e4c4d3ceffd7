"""Every web request has an id: nginx's `X-Request-Id` if it sends one, else our own; it is on
each log line of the request, on the jobs the request queues, and on the response's header."""

from __future__ import annotations

from flask import Flask, Response, request

from infra.logs import bind_request_id, clear_request_id, current_request_id

HEADER = "X-Request-Id"


def init_app(app: Flask) -> None:
    @app.before_request
    def _bind() -> None:
        bind_request_id(request.headers.get(HEADER))

    @app.after_request
    def _echo(response: Response) -> Response:
        request_id = current_request_id()
        if request_id:
            response.headers[HEADER] = request_id
        return response

    @app.teardown_request
    def _clear(_exc: BaseException | None) -> None:
        clear_request_id()
