"""Request spans: the Flask instrumentation on one app, and the trace id on every response."""

from __future__ import annotations

from flask import Flask, Response
from opentelemetry import trace
from opentelemetry.trace import format_trace_id

from app.tracing import TRACE_ID_HEADER

# Probes and scrapes every few seconds would bury the real traffic (regexes, searched in the
# full URL; their database and Redis calls are dropped with them, see NoOrphanClientSpans).
EXCLUDED_URLS = r"^[a-z]+://[^/]+/(health|metrics)(/|\?|$)"


def instrument_app(app: Flask) -> None:
    """Trace each request of `app`; an incoming W3C `traceparent` continues the caller's trace.

    Call before any other `before_request` is registered: a request refused by an earlier hook
    (a 415, a rate limit) must still get its span.
    """
    if getattr(app, "_is_instrumented_by_opentelemetry", False):
        return
    from opentelemetry.instrumentation.flask import FlaskInstrumentor

    FlaskInstrumentor.instrument_app(app, excluded_urls=EXCLUDED_URLS, enable_commenter=False)
    app.after_request(add_trace_id_header)


def add_trace_id_header(response: Response) -> Response:
    """The id a client quotes to find its request in the tracing backend and in the logs."""
    span_context = trace.get_current_span().get_span_context()
    if span_context.is_valid:
        response.headers[TRACE_ID_HEADER] = format_trace_id(span_context.trace_id)
    return response
