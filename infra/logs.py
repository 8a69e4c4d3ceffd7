"""Log lines, as text or as one JSON object each (LOG_FORMAT), with the request id that caused them.

The id of a web request (nginx's `X-Request-Id` when it sends one, else a new one) stays with
everything that request does: its log lines, and the jobs it queues, which carry it in their
meta so that the worker's lines for a referral's SMS name the USSD step that made it. The id is
random, never derived from a phone number, and the formatter adds nothing to a message but
fixed fields: what is logged stays what the code chose to log (never a number).
"""

from __future__ import annotations

import json
import logging
import random
import re
from contextvars import ContextVar
from datetime import UTC, datetime

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
REQUEST_ID_META = "request_id"  # the key of a job's meta that carries it
_REQUEST_ID: ContextVar[str | None] = ContextVar("sira_request_id", default=None)
# What a proxy may hand us as an id: short, plain; anything else is replaced by our own.
_VALID_ID = re.compile(r"[A-Za-z0-9._-]{8,64}")


def current_request_id() -> str | None:
    return _REQUEST_ID.get()


def bind_request_id(given: str | None = None) -> str:
    """Use `given` (a proxy's id, a job's meta) if it looks like one, else a new id; return it."""
    request_id = given if given and _VALID_ID.fullmatch(given) else _new_id()
    _REQUEST_ID.set(request_id)
    return request_id


def _new_id() -> str:
    """32 hex digits. An id only ties log lines together, it guards nothing: Python's generator
    (reseeded in each forked process) spares every request the system call a uuid4 makes."""
    return f"{random.getrandbits(128):032x}"


def clear_request_id() -> None:
    _REQUEST_ID.set(None)


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, request id, and the traceback."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": getattr(record, "request_id", None),
        }
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


def configure_logging(log_format: str) -> None:
    """The process's logging on stderr (the journal): text, or JSON with the request id.

    Every record gets the current request id as `request_id`, whoever handles it; the handler is
    installed only if the process has none yet (a test runner's, or an earlier app's, stays).
    """
    global _factory_installed
    if not _factory_installed:
        make_record = logging.getLogRecordFactory()

        def with_request_id(*args: object, **kwargs: object) -> logging.LogRecord:
            record = make_record(*args, **kwargs)
            record.request_id = _REQUEST_ID.get()
            return record

        logging.setLogRecordFactory(with_request_id)
        _factory_installed = True
    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter() if log_format == "json" else logging.Formatter(TEXT_FORMAT))
    logging.basicConfig(level=logging.INFO, handlers=[handler])


_factory_installed = False
