"""Request tracing with OpenTelemetry: HTTP, database, Redis and queued jobs, in one trace.

Off unless an OTLP endpoint (or the console exporter) is configured through the standard
OTEL_* variables; off means nothing is installed, so the request path pays nothing. Nor is
OpenTelemetry imported while it is off (~1 MiB and ~15 ms per process): the modules of this
package that need it are imported by the functions below once tracing is on.
"""

from __future__ import annotations

import os
import sys
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any

from flask import Flask
from loguru import logger

from app.config import Settings, load_settings

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.trace import Span

TRACE_ID_HEADER = "X-Trace-ID"

__all__ = [
    "TRACE_ID_HEADER",
    "continue_trace",
    "init_tracing",
    "init_tracing_for_worker",
    "trace_carrier",
    "tracer_provider",
]


def _in_gunicorn() -> bool:
    # gunicorn's arbiter sets this before loading the app; its workers inherit it.
    return os.environ.get("SERVER_SOFTWARE", "").startswith("gunicorn/")


def init_tracing(app: Flask, settings: Settings) -> None:
    """Called by create_app, before anything else registers a hook or creates an engine."""
    if not settings.tracing.enabled:
        return
    from app.tracing.http import instrument_app
    from app.tracing.provider import install_instrumentations, start_tracing

    install_instrumentations()
    # Under gunicorn the provider is started by the post_fork hook in each worker; this app
    # may be built in the master (preload_app), where an export thread would not survive.
    if not _in_gunicorn():
        start_tracing(settings)
    elif tracer_provider() is None:
        logger.info(
            "tracing configured: spans are recorded once gunicorn's post_fork hook calls "
            "app.tracing.init_tracing_for_worker in this worker"
        )
    instrument_app(app)


def init_tracing_for_worker(settings: Settings | None = None) -> None:
    """gunicorn `post_fork`: start tracing in this worker (a no-op when tracing is off)."""
    settings = settings or load_settings()
    if settings.tracing.enabled:
        from app.tracing.provider import install_instrumentations, start_tracing

        install_instrumentations()
        start_tracing(settings)


def tracer_provider() -> TracerProvider | None:
    """This process's tracer provider, or None while tracing has not started here."""
    # Only start_tracing's module holds one, and nothing imports it while tracing is off.
    provider_module = sys.modules.get("app.tracing.provider")
    return None if provider_module is None else provider_module.tracer_provider()


def trace_carrier() -> dict[str, str]:
    """The current trace context as W3C headers (`traceparent`, `tracestate`); {} when off."""
    if tracer_provider() is None:
        return {}
    from app.tracing.jobs import current_trace_carrier

    return current_trace_carrier()


def continue_trace(
    span_name: str, carrier: Any, attributes: Any = None
) -> AbstractContextManager[Span]:
    """Run a queued job under a span that joins the enqueuing request's trace (see jobs.py)."""
    from app.tracing.jobs import continue_enqueuers_trace

    return continue_enqueuers_trace(span_name, carrier, attributes)
