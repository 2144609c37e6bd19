"""GET and HEAD /health/live answered ahead of the Flask stack, with the stack's own headers.

Why: orchestrators probe liveness every few seconds on every instance, and the answer matters
most when the workers are busiest, which is when a probe queued behind the middleware stack
can get a busy but healthy worker restarted. The answer depends on nothing but the process
(SPEC section 4: no dependency calls), so what the stack does for it (routing, contexts, the
rate limiter's exemption, talisman's options, CORS's path match) comes out the same every
time, at ~5x the CPU of a bare Flask answer (docs/performance.md, finding 24).

How: this layer sits inside ProxyFix (the client address and the scheme are already the
trusted ones) and outside Flask. The first 200 of each scheme goes through the whole stack and
its headers, less the per-request ones, are kept; later probes get those headers with their
own request id, a fresh body, their access line and their request metrics. Any other request,
and a probe with a query string or a body, goes to Flask as before.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterable
from typing import Any

from flask import Flask

from app.config import Settings
from app.middlewares.request_context import REQUEST_ID_HEADER, incoming_request_id, log_access
from app.middlewares.security import CORS_RESOURCES
from app.monitoring import metrics
from app.monitoring.health import liveness_body

LIVE_PATH = "/health/live"
_PROBE_METHODS = frozenset({"GET", "HEAD"})
# The schemes whose headers are kept. ProxyFix takes the scheme from X-Forwarded-Proto, which
# a misconfigured proxy may pass through from clients: any other value goes to the stack,
# so a client cannot make this map grow.
_KEPT_SCHEMES = frozenset({"http", "https"})
# Made again for every answer, never replayed (lower case, as compared).
_PER_REQUEST_HEADERS = frozenset({"content-length", REQUEST_ID_HEADER.lower()})
# CORS answers only on CORS_RESOURCES, so a browser's Origin header changes nothing of the
# probe's answer; should those paths ever cover the probe, such probes go to the stack.
_ORIGIN_CHANGES_THE_ANSWER = re.match(CORS_RESOURCES, LIVE_PATH) is not None

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]
Headers = list[tuple[str, str]]


def is_plain_probe(environ: dict[str, Any]) -> bool:
    """A liveness probe with nothing in it that the stack could answer differently."""
    return (
        environ.get("PATH_INFO") == LIVE_PATH
        and environ.get("REQUEST_METHOD") in _PROBE_METHODS
        and environ.get("wsgi.url_scheme") in _KEPT_SCHEMES
        and not environ.get("QUERY_STRING")
        and environ.get("CONTENT_LENGTH", "0") in ("", "0")
        and "HTTP_TRANSFER_ENCODING" not in environ
        and not (_ORIGIN_CHANGES_THE_ANSWER and "HTTP_ORIGIN" in environ)
    )


class LiveProbeResponder:
    """WSGI middleware: plain liveness probes answered here, everything else by `wsgi_app`."""

    def __init__(self, wsgi_app: WSGIApp, flask_app: Flask, settings: Settings) -> None:
        self.wsgi_app = wsgi_app
        self._settings = settings
        self._json = flask_app.json
        # What Flask's jsonify writes: indented in debug mode, compact otherwise.
        self._dump_args: dict[str, Any] = (
            {"indent": 2} if flask_app.debug else {"separators": (",", ":")}
        )
        self._headers_by_scheme: dict[str, Headers] = {}

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        if not is_plain_probe(environ):
            return self.wsgi_app(environ, start_response)
        scheme = environ["wsgi.url_scheme"]
        kept_headers = self._headers_by_scheme.get(scheme)
        if kept_headers is None:
            return self.wsgi_app(environ, self._keeping_headers(scheme, start_response))
        return self._answer(environ, start_response, kept_headers)

    def _keeping_headers(
        self, scheme: str, start_response: Callable[..., Any]
    ) -> Callable[..., Any]:
        def start_and_keep(status: str, headers: Headers, exc_info: Any = None) -> Any:
            if status.startswith("200 ") and exc_info is None:
                self._headers_by_scheme[scheme] = [
                    (name, value)
                    for name, value in headers
                    if name.lower() not in _PER_REQUEST_HEADERS
                ]
            return start_response(status, headers, exc_info)

        return start_and_keep

    def _answer(
        self, environ: dict[str, Any], start_response: Callable[..., Any], kept_headers: Headers
    ) -> list[bytes]:
        started = time.perf_counter()
        method = environ["REQUEST_METHOD"]
        request_id = incoming_request_id(environ.get("HTTP_X_REQUEST_ID"))
        body = (self._json.dumps(liveness_body(self._settings), **self._dump_args) + "\n").encode()
        start_response(
            "200 OK",
            [
                *kept_headers,
                ("Content-Length", str(len(body))),
                (REQUEST_ID_HEADER, request_id),
            ],
        )
        duration_s = time.perf_counter() - started
        metrics.record_request(LIVE_PATH, method, 200, duration_s)
        log_access(
            method,
            LIVE_PATH,
            200,
            round(duration_s * 1000, 2),
            environ.get("REMOTE_ADDR"),
            environ.get("HTTP_USER_AGENT", ""),
            request_id=request_id,
        )
        return [] if method == "HEAD" else [body]


def init_live_probe(app: Flask, settings: Settings) -> None:
    """Answer plain liveness probes ahead of Flask; call before ProxyFix wraps the app."""
    app.wsgi_app = LiveProbeResponder(app.wsgi_app, app, settings)  # type: ignore[method-assign]
