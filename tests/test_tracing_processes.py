"""Tracing across real processes: gunicorn workers and a forking RQ worker export over
OTLP/HTTP to a receiver in the test, and their spans join the caller's trace."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid

import pytest
import requests
from redis import Redis
from rq import Queue

from app.tracing import TRACE_ID_HEADER
from tests.otlp_sink import otlp_sink
from tests.processes import BIN_DIR, REPO_ROOT, free_port, stop_process, wait_until_serving
from tests.tracing_jobs import DELIVERED_KEY_PREFIX, deliver_welcome

pytestmark = pytest.mark.slow

SPAN_KIND_SERVER, SPAN_KIND_CLIENT, SPAN_KIND_CONSUMER = 2, 3, 5


def new_traceparent() -> tuple[str, str, str]:
    trace_id, span_id = uuid.uuid4().hex, uuid.uuid4().hex[:16]
    return trace_id, span_id, f"00-{trace_id}-{span_id}-01"


def test_a_job_run_by_a_forking_rq_worker_joins_the_trace_that_queued_it(redis_url, tmp_path):
    trace_id, request_span_id, traceparent = new_traceparent()
    connection = Redis.from_url(redis_url)
    queue = Queue(f"tests-tracing-{uuid.uuid4().hex[:8]}", connection=connection)
    email = f"fork-{uuid.uuid4().hex[:8]}@example.com"
    # The carrier as trace_carrier() captures it inside a request (see tests/test_tracing.py).
    queue.enqueue(deliver_welcome, email, meta={"trace": {"traceparent": traceparent}})

    with otlp_sink() as sink:
        environment = {
            **os.environ,
            "APP_ENV": "test",
            "DATABASE_URL": f"sqlite:///{tmp_path / 'worker.db'}",
            "REDIS_URL": redis_url,
            "OTEL_EXPORTER_OTLP_ENDPOINT": sink.endpoint,
            "OTEL_SERVICE_NAME": "steadfast-worker",
        }
        worker = subprocess.run(
            [sys.executable, "-m", "tests.tracing_worker", redis_url, queue.name],
            cwd=REPO_ROOT,
            env=environment,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert worker.returncode == 0, worker.stdout[-3000:] + worker.stderr[-3000:]
        # The work horse exits with os._exit: its spans arrive only because the job flushed.
        spans = sink.wait_for(
            lambda received: any(
                s.name == "email welcome" and s.trace_id == trace_id for s in received
            )
        )

    assert connection.get(DELIVERED_KEY_PREFIX + email) == b"1"
    in_trace = [s for s in spans if s.trace_id == trace_id]
    job = next(s for s in in_trace if s.name == "email welcome")
    assert job.kind == SPAN_KIND_CONSUMER and job.parent_span_id == request_span_id
    assert job.service_name == "steadfast-worker"
    assert [(s.name, s.kind) for s in in_trace if s.parent_span_id == job.span_id] == [
        ("SET", SPAN_KIND_CLIENT)
    ]


def test_gunicorn_workers_start_tracing_after_the_fork_and_continue_callers_traces(tmp_path):
    port = free_port()
    log_path = tmp_path / "gunicorn.log"
    with otlp_sink() as sink, open(log_path, "wb") as log_file:
        environment = {
            **os.environ,
            "APP_ENV": "test",
            "LOG_FORMAT": "json",
            "DATABASE_URL": f"sqlite:///{tmp_path / 'web.db'}",
            "WEB_CONCURRENCY": "2",
            "PORT": str(port),
            "OTEL_EXPORTER_OTLP_ENDPOINT": sink.endpoint,
            "OTEL_SERVICE_NAME": "steadfast-web",
        }
        process = subprocess.Popen(
            [
                str(BIN_DIR / "gunicorn"),
                "-c",
                "tests/tracing_gunicorn.conf.py",
                "--bind",
                f"127.0.0.1:{port}",
                "wsgi:app",
            ],
            cwd=REPO_ROOT,
            env=environment,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            base_url = f"http://127.0.0.1:{port}"
            wait_until_serving(base_url + "/", process=process)
            callers = [new_traceparent() for _ in range(6)]
            for trace_id, _, traceparent in callers:
                response = requests.get(
                    base_url + "/api/v1/users/me", headers={"traceparent": traceparent}, timeout=10
                )
                assert response.status_code == 401
                assert response.headers[TRACE_ID_HEADER] == trace_id
            wanted = {trace_id for trace_id, _, _ in callers}
            spans = sink.wait_for(
                lambda received: wanted <= {s.trace_id for s in received if s.kind == 2}
            )
        finally:
            stop_process(process)

    for trace_id, caller_span_id, _ in callers:
        server = next(s for s in spans if s.trace_id == trace_id and s.kind == SPAN_KIND_SERVER)
        assert server.name == "GET /api/v1/users/me"
        assert server.parent_span_id == caller_span_id
        assert server.service_name == "steadfast-web"
        assert server.attributes["http.status_code"] == "401"
    records = [json.loads(line) for line in log_path.read_text().splitlines() if line[:1] == "{"]
    started = [r for r in records if r["message"].startswith("tracing started")]
    # Once per worker, none in the master: each export thread lives where its spans are made.
    assert len(started) == 2, [r["message"] for r in records]
