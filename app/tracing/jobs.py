"""Trace context across the job queue: captured where a job is enqueued, continued in the worker.

Enqueue with `meta={"trace": trace_carrier()}` (or pass it in the job's kwargs); in the job,
wrap the work in `with continue_trace("email welcome", job.meta.get("trace")):`, both from
`app.tracing`, which imports this module once needed: with tracing off, no OpenTelemetry.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager

from opentelemetry import propagate, trace
from opentelemetry.trace import INVALID_SPAN, Span, SpanKind
from opentelemetry.util.types import Attributes

from app.tracing.provider import tracer_provider

# The worker's work horse leaves with os._exit (no atexit): its spans are flushed at the end
# of each job, waiting at most this long for the collector.
FLUSH_TIMEOUT_MS = 5000


def current_trace_carrier() -> dict[str, str]:
    """The current trace context as W3C headers (`traceparent`, `tracestate`)."""
    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    return carrier


@contextmanager
def continue_enqueuers_trace(
    span_name: str, carrier: Mapping[str, str] | None, attributes: Attributes = None
) -> Iterator[Span]:
    """Run the job under a span that joins the enqueuing request's trace."""
    provider = tracer_provider()
    if provider is None:
        yield INVALID_SPAN
        return
    parent = propagate.extract(dict(carrier or {}))
    tracer = trace.get_tracer("app.tracing.jobs")
    try:
        with tracer.start_as_current_span(
            span_name,
            context=parent,
            kind=SpanKind.CONSUMER,
            attributes={"messaging.system": "rq", "messaging.operation.type": "process"}
            | dict(attributes or {}),
        ) as span:
            yield span
    finally:
        provider.force_flush(FLUSH_TIMEOUT_MS)
