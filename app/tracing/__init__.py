"""Request tracing with OpenTelemetry: HTTP, database, Redis and queued jobs, in one trace.

Off unless an OTLP endpoint (or the console exporter) is configured through the standard
OTEL_* variables; off means nothing is installed, so the request path pays nothing.
"""

from __future__ import annotations

import os

from flask import Flask
from loguru import logger

from app.config import Settings, load_settings
from app.tracing.http import TRACE_ID_HEADER, instrument_app
from app.tracing.jobs import continue_trace, trace_carrier
from app.tracing.provider import install_instrumentations, start_tracing, tracer_provider

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
        install_instrumentations()
        start_tracing(settings)
