"""Tracing: one trace from the HTTP request through the database, Redis and a queued job,
with the real OpenTelemetry SDK recording into its in-memory exporter."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from collections.abc import Iterator

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, format_span_id, format_trace_id
from sqlalchemy import text

from app.config import load_settings
from app.email.queue import run_worker
from app.extensions import db
from app.tracing import TRACE_ID_HEADER, tracer_provider
from app.tracing.provider import start_tracing, uninstall_instrumentations
from app.tracing.scrubbing import ScrubbingSpanExporter
from tests.conftest import REPO_ROOT, STRONG_PASSWORD, bearer, login, register, unique_email

# Any configured exporter turns tracing on; the provider below already holds the in-memory one.
TRACING_ON = {"OTEL_TRACES_EXPORTER": "console"}


@pytest.fixture(scope="module")
def exported() -> Iterator[InMemorySpanExporter]:
    """The process's tracer provider, exporting (through the scrubber) into memory."""
    exporter = InMemorySpanExporter()
    if tracer_provider() is None:
        start_tracing(load_settings({"APP_ENV": "test", **TRACING_ON}), exporter=exporter)
    else:
        tracer_provider().add_span_processor(BatchSpanProcessor(ScrubbingSpanExporter(exporter)))
    yield exporter
    # The provider cannot be unset, but later tests should not run instrumented.
    uninstall_instrumentations()


@pytest.fixture(autouse=True)
def _no_ambient_otel_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_SDK_DISABLED", "OTEL_TRACES_SAMPLER"):
        monkeypatch.delenv(name, raising=False)


def finished_spans(exporter: InMemorySpanExporter, trace_id: str) -> list[ReadableSpan]:
    tracer_provider().force_flush()
    wanted = int(trace_id, 16)
    return [span for span in exporter.get_finished_spans() if span.context.trace_id == wanted]


def only(spans: list[ReadableSpan]) -> ReadableSpan:
    assert len(spans) == 1, [span.name for span in spans]
    return spans[0]


def children_of(parent: ReadableSpan, spans: list[ReadableSpan]) -> list[ReadableSpan]:
    return [s for s in spans if s.parent is not None and s.parent.span_id == parent.context.span_id]


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_one_registration_is_one_trace_across_http_database_redis_and_the_worker(
    make_app, redis_url, exported, monkeypatch, log_records
):
    app = make_app(REDIS_URL=redis_url, **TRACING_ON)
    exported.clear()
    email = unique_email()
    # The real email queue: the welcome email is a job carrying the request's trace context.
    response = register(app.test_client(), email)
    assert response.status_code == 201
    with app.app_context():
        assert run_worker(redis_url, burst=True, forking=False)

    spans = finished_spans(exported, response.headers[TRACE_ID_HEADER])
    server = only([s for s in spans if s.kind == SpanKind.SERVER])
    assert server.name == "POST /api/v1/users" and server.parent is None
    assert server.attributes["http.route"] == "/api/v1/users"
    assert server.attributes["http.status_code"] == 201

    under_request = children_of(server, spans)
    database = [s for s in under_request if s.attributes.get("db.system") == "postgresql"]
    statements = [s.attributes.get("db.statement", "") for s in database]
    assert any(statement.startswith("INSERT INTO users") for statement in statements)
    redis_calls = [s.name for s in under_request if s.attributes.get("db.system") == "redis"]
    assert "EVALSHA" in redis_calls, "the rate limiter's counters, under the request"
    assert any("RPUSH" in name for name in redis_calls), "queueing the job, under the request"

    job = only([s for s in spans if s.name == "email welcome"])
    assert job.kind == SpanKind.CONSUMER
    assert job.parent.span_id == server.context.span_id
    assert job.start_time >= server.start_time
    # The job's own work (minting the verification token) is traced under it.
    job_statements = [s.attributes.get("db.statement", "") for s in children_of(job, spans)]
    assert any(statement.startswith("INSERT INTO one_time_tokens") for statement in job_statements)
    # The worker's log line belongs to the same trace, under the job's span.
    sent = only([r for r in log_records if r["message"] == "email sent: welcome"])
    assert sent["trace_id"] == response.headers[TRACE_ID_HEADER]
    assert sent["span_id"] == format_span_id(job.context.span_id)
    # Nothing else in the trace: the worker's own polling is not part of it.
    assert {s.context.span_id for s in spans} == {
        server.context.span_id,
        job.context.span_id,
        *(s.context.span_id for s in under_request),
        *(s.context.span_id for s in children_of(job, spans)),
    }


def test_an_incoming_traceparent_continues_the_callers_trace(make_app, redis_url, exported):
    client = make_app(REDIS_URL=redis_url, **TRACING_ON).test_client()
    email = unique_email()
    register(client, email)
    access_token = login(client, email).get_json()["data"]["access_token"]
    caller_trace_id, caller_span_id = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
    exported.clear()

    response = client.get(
        "/api/v1/users/me",
        headers={
            **bearer(access_token),
            "traceparent": f"00-{caller_trace_id}-{caller_span_id}-01",
        },
    )

    assert response.status_code == 200
    assert response.headers[TRACE_ID_HEADER] == caller_trace_id
    spans = finished_spans(exported, caller_trace_id)
    server = only([s for s in spans if s.kind == SpanKind.SERVER])
    assert server.parent.is_remote and format_span_id(server.parent.span_id) == caller_span_id
    assert server.attributes["http.route"] == "/api/v1/users/me"
    # The rate limiter's script, which also answers the token's revocation check (finding 29
    # of docs/performance.md), is traced under the request: one Redis span, no EXISTS.
    under_request = children_of(server, spans)
    redis_calls = [s.name for s in under_request if s.attributes.get("db.system") == "redis"]
    assert redis_calls == ["EVALSHA"]
    # No request header is recorded unless an operator asks for it (and then see below).
    assert not [key for s in spans for key in s.attributes if key.startswith("http.request.header")]


def test_every_log_line_of_a_request_carries_its_trace_and_span_id(make_app, exported, log_records):
    client = make_app(**TRACING_ON).test_client()
    exported.clear()
    response = register(client)
    assert response.status_code == 201

    server = only(
        [
            s
            for s in finished_spans(exported, response.headers[TRACE_ID_HEADER])
            if s.kind == SpanKind.SERVER
        ]
    )
    lines = [r for r in log_records if r.get("request_id") == response.headers["X-Request-ID"]]
    assert len(lines) >= 2, lines  # the welcome email and the access line at least
    for line in lines:
        assert line["trace_id"] == format_trace_id(server.context.trace_id)
        assert line["span_id"] == format_span_id(server.context.span_id)


def test_no_password_token_header_or_sql_parameter_reaches_an_exported_span(
    make_app, redis_url, exported, monkeypatch
):
    # An operator capturing every request header must still not export credentials.
    monkeypatch.setenv("OTEL_INSTRUMENTATION_HTTP_CAPTURE_HEADERS_SERVER_REQUEST", ".*")
    client = make_app(REDIS_URL=redis_url, **TRACING_ON).test_client()
    exported.clear()
    email = unique_email()
    register(client, email)
    assert register(client, email).status_code == 409
    tokens = login(client, email).get_json()["data"]
    login(client, email, "wrong " + STRONG_PASSWORD)
    client.get("/api/v1/users/me", headers=bearer(tokens["access_token"]))
    client.set_cookie("session", tokens["refresh_token"])
    client.get(f"/api/v1/users/me?access_token={tokens['access_token']}")
    client.post("/api/v1/auth/refresh", json={"refresh_token": tokens["refresh_token"]})

    tracer_provider().force_flush()
    spans = exported.get_finished_spans()
    assert len(spans) >= 10
    exported_text = "\n".join(
        json.dumps(
            {
                "name": span.name,
                "attributes": dict(span.attributes),
                "events": [dict(event.attributes) for event in span.events],
                "status": span.status.description,
            },
            default=str,
        )
        for span in spans
    )
    for secret in (STRONG_PASSWORD, tokens["access_token"], tokens["refresh_token"]):
        assert secret not in exported_text
    assert tokens["access_token"].split(".")[1] not in exported_text
    captured = {
        key: value
        for span in spans
        for key, value in span.attributes.items()
        if key in ("http.request.header.authorization", "http.request.header.cookie")
    }
    assert set(captured) == {"http.request.header.authorization", "http.request.header.cookie"}
    assert set(captured.values()) == {"[REDACTED]"}
    targets = [s.attributes["http.target"] for s in spans if "access_token=" in str(s.attributes)]
    assert targets == ["/api/v1/users/me?access_token=[REDACTED]"]


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_a_failed_statement_is_recorded_without_the_values_it_carried(make_app, exported):
    app = make_app(**TRACING_ON)
    exported.clear()
    with (
        app.app_context(),
        trace.get_tracer("tests").start_as_current_span("job") as job,
        pytest.raises(Exception, match="hunter2"),
    ):
        db.session.execute(text("SELECT CAST(:secret AS integer)"), {"secret": "hunter2"})
    failed = only(
        [
            s
            for s in finished_spans(exported, format_trace_id(job.get_span_context().trace_id))
            if s.attributes.get("db.system") == "postgresql" and not s.status.is_ok
        ]
    )
    assert "hunter2" not in failed.status.description
    assert failed.status.description.startswith("invalid input syntax for type integer")


def test_creating_the_app_twice_does_not_trace_anything_twice(make_app, exported):
    make_app(**TRACING_ON)
    client = make_app(**TRACING_ON).test_client()
    exported.clear()
    response = client.get("/api/v1/users/me")
    assert response.status_code == 401
    spans = finished_spans(exported, response.headers[TRACE_ID_HEADER])
    assert [s.name for s in spans] == ["GET /api/v1/users/me"]


def test_health_and_metrics_requests_are_not_traced(make_app, exported):
    client = make_app(**TRACING_ON).test_client()
    exported.clear()
    for path in ("/health", "/health/live", "/metrics"):
        assert TRACE_ID_HEADER not in client.get(path).headers
    tracer_provider().force_flush()
    assert exported.get_finished_spans() == ()


def test_with_no_otel_configuration_nothing_is_installed():
    # A fresh interpreter: this process has a tracer provider since the fixture above.
    probe = textwrap.dedent(
        """
        import json, threading
        from opentelemetry import trace
        from opentelemetry.instrumentation.redis import RedisInstrumentor
        from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor
        from app import create_app
        app = create_app({"APP_ENV": "test", "DATABASE_URL": "sqlite://"})
        response = app.test_client().get("/nowhere")
        print(json.dumps({
            "flask": getattr(app, "_is_instrumented_by_opentelemetry", False),
            "sqlalchemy": SQLAlchemyInstrumentor().is_instrumented_by_opentelemetry,
            "redis": RedisInstrumentor().is_instrumented_by_opentelemetry,
            "provider": type(trace.get_tracer_provider()).__name__,
            "export_threads": [t.name for t in threading.enumerate() if t.name.startswith("Otel")],
            "header": response.headers.get("X-Trace-ID"),
        }))
        """
    )
    environment = {"APP_ENV": "test", "PATH": "/usr/bin:/bin", "PYTHONPATH": str(REPO_ROOT)}
    result = subprocess.run(
        [sys.executable, "-c", probe],
        cwd=REPO_ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    state = json.loads(result.stdout.strip().splitlines()[-1])
    assert state == {
        "flask": False,
        "sqlalchemy": False,
        "redis": False,
        "provider": "ProxyTracerProvider",
        "export_threads": [],
        "header": None,
    }
