"""Request id in, request id out, and one access log line per request."""

from __future__ import annotations

import re
import time
import uuid

from flask import Flask, Response, g, request
from loguru import logger

REQUEST_ID_HEADER = "X-Request-ID"
# A client's id is echoed into logs and headers: accept only short, plain tokens.
_SANE_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:\-]{1,128}$")


def incoming_request_id(raw: str | None) -> str:
    if raw and _SANE_REQUEST_ID.match(raw):
        return raw
    return uuid.uuid4().hex


def _start_request() -> None:
    g.request_started = time.perf_counter()
    g.request_id = incoming_request_id(request.headers.get(REQUEST_ID_HEADER))


def _finish_request(response: Response) -> Response:
    response.headers[REQUEST_ID_HEADER] = g.get("request_id") or incoming_request_id(None)
    started = g.get("request_started")
    duration_ms = round((time.perf_counter() - started) * 1000, 2) if started else None
    log_access(
        request.method,
        request.path,
        response.status_code,
        duration_ms,
        request.remote_addr,
        request.headers.get("User-Agent", ""),
    )
    return response


def log_access(
    method: str,
    path: str,
    status: int,
    duration_ms: float | None,
    ip: str | None,
    user_agent: str,
    **context: str,
) -> None:
    """The one access line of a request (SPEC section 4).

    Within a Flask request the log patcher adds request_id and user_id; a request answered
    outside Flask (app/monitoring/live_probe.py) passes its request_id in `context`.
    """
    # Keyword arguments land in the record's extra fields, as bind() would put them, without
    # building a bound logger for every request.
    logger.info(
        "{} {} {}",
        method,
        path,
        status,
        access=True,
        method=method,
        path=path,
        status=status,
        duration_ms=duration_ms,
        ip=ip,
        user_agent=user_agent[:200],
        **context,
    )


def init_request_context(app: Flask) -> None:
    app.before_request(_start_request)
    app.after_request(_finish_request)
