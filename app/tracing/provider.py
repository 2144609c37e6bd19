"""The process's tracer provider and library instrumentations, set up once per process.

Under gunicorn this runs in each worker (the `post_fork` hook), never in the master: the
BatchSpanProcessor's export thread must live in the process whose spans it sends.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Sequence

from loguru import logger
from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.sdk.resources import SERVICE_NAME, SERVICE_VERSION, Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    ConsoleSpanExporter,
    SpanExporter,
)
from opentelemetry.sdk.trace.sampling import (
    ALWAYS_OFF,
    ALWAYS_ON,
    Decision,
    ParentBased,
    Sampler,
    SamplingResult,
    TraceIdRatioBased,
)
from opentelemetry.trace import Link, SpanKind
from opentelemetry.trace.span import TraceState
from opentelemetry.util.types import Attributes

from app.config import Settings, TracingSettings
from app.tracing.scrubbing import ScrubbingSpanExporter

_lock = threading.Lock()
_provider: TracerProvider | None = None
_instrumented = False


def tracer_provider() -> TracerProvider | None:
    """The provider this process started, or None while tracing is off."""
    return _provider


def install_instrumentations() -> None:
    """Patch SQLAlchemy and redis-py once; creates no thread, so it is safe before a fork."""
    global _instrumented
    with _lock:
        if _instrumented:
            return
        from opentelemetry.instrumentation.redis import RedisInstrumentor
        from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor

        # No SQL comments: they would defeat statement caching and put route names in SQL.
        # The package declares sqlalchemy < 2.1 although the engine events it uses are the
        # same in 2.1; tests/test_tracing.py shows its spans, so the range check is skipped.
        SQLAlchemyInstrumentor().instrument(enable_commenter=False, skip_dep_check=True)
        RedisInstrumentor().instrument()
        _instrumented = True


def uninstall_instrumentations() -> None:
    """Undo install_instrumentations (tests, so later ones run untraced)."""
    global _instrumented
    with _lock:
        if not _instrumented:
            return
        from opentelemetry.instrumentation.redis import RedisInstrumentor
        from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor

        SQLAlchemyInstrumentor().uninstrument()
        RedisInstrumentor().uninstrument()
        _instrumented = False


def start_tracing(settings: Settings, exporter: SpanExporter | None = None) -> TracerProvider:
    """Create and register the provider (idempotent). `exporter` replaces the configured one
    (tests pass the SDK's in-memory exporter)."""
    global _provider
    with _lock:
        if _provider is not None:
            return _provider
        config = settings.tracing
        resource = Resource.create(
            {
                SERVICE_NAME: config.service_name,
                SERVICE_VERSION: settings.version,
                "deployment.environment.name": settings.app_env,
            }
        )
        provider = TracerProvider(resource=resource, sampler=build_sampler(config))
        provider.add_span_processor(
            BatchSpanProcessor(ScrubbingSpanExporter(exporter or build_exporter(config)))
        )
        trace.set_tracer_provider(provider)
        _provider = provider
    logger.bind(
        otel_exporter=config.exporter if exporter is None else type(exporter).__name__,
        otel_endpoint=config.traces_endpoint,
        otel_sampler=config.sampler,
        otel_sampler_arg=config.sampler_arg,
    ).info("tracing started for service {}", config.service_name)
    return provider


def build_exporter(config: TracingSettings) -> SpanExporter:
    if config.exporter == "console":
        # stderr: stdout carries the JSON log lines in deployment.
        return ConsoleSpanExporter(out=sys.stderr)
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    # Headers (a vendor's API key), timeout, compression and certificates come from the
    # standard OTEL_EXPORTER_OTLP_* variables, read by the exporter itself.
    return OTLPSpanExporter(endpoint=config.traces_endpoint)


def build_sampler(config: TracingSettings) -> Sampler:
    ratio = config.sampler_arg
    samplers = {
        "always_on": ALWAYS_ON,
        "always_off": ALWAYS_OFF,
        "traceidratio": TraceIdRatioBased(ratio),
        "parentbased_always_on": ParentBased(ALWAYS_ON),
        "parentbased_always_off": ParentBased(ALWAYS_OFF),
        "parentbased_traceidratio": ParentBased(TraceIdRatioBased(ratio)),
    }
    return NoOrphanClientSpans(samplers[config.sampler])


class NoOrphanClientSpans(Sampler):
    """Drops database and Redis calls made outside any request or job.

    Those are plumbing (the RQ worker polling its queue, migrations, health probes, which are
    not traced): each would otherwise become a one-span trace and drown the real ones.
    """

    def __init__(self, delegate: Sampler) -> None:
        self.delegate = delegate

    def should_sample(
        self,
        parent_context: Context | None,
        trace_id: int,
        name: str,
        kind: SpanKind | None = None,
        attributes: Attributes = None,
        links: Sequence[Link] | None = None,
        trace_state: TraceState | None = None,
    ) -> SamplingResult:
        if kind == SpanKind.CLIENT:
            parent = trace.get_current_span(parent_context).get_span_context()
            if not parent.is_valid:
                return SamplingResult(Decision.DROP)
        return self.delegate.should_sample(
            parent_context, trace_id, name, kind, attributes, links, trace_state
        )

    def get_description(self) -> str:
        return f"NoOrphanClientSpans{{{self.delegate.get_description()}}}"
