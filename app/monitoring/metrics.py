"""Prometheus metrics: defined once here, recorded through small named functions.

Under gunicorn the master sets PROMETHEUS_MULTIPROC_DIR before anything imports
prometheus_client, so every worker writes its values to files there and /metrics merges them
(multiprocess mode). Without it (flask run, tests) the process's own registry is used.
"""

from __future__ import annotations

import os
import time
from typing import TYPE_CHECKING

from flask import Flask, Response, g, request
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client import multiprocess as prometheus_multiprocess

if TYPE_CHECKING:
    from app.monitoring.loop_lag import LagFigures

MULTIPROC_DIR_VARIABLE = "PROMETHEUS_MULTIPROC_DIR"
# Whether prometheus_client chose file-backed values when it was imported (it decides once).
MULTIPROCESS = bool(os.environ.get(MULTIPROC_DIR_VARIABLE))

# Request latency buckets from a cached read (5 ms) to the gunicorn timeout's neighbourhood.
_REQUEST_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
_QUERY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
_LAG_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
UNMATCHED_ENDPOINT = "<unmatched>"
# Any token is a valid HTTP method; a client inventing new ones must not invent new series.
_KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
OTHER_METHOD = "OTHER"

HTTP_REQUESTS = Counter(
    "steadfast_http_requests_total",
    "HTTP requests answered, by URL rule, method and status.",
    ("endpoint", "method", "status"),
)
HTTP_REQUEST_DURATION = Histogram(
    "steadfast_http_request_duration_seconds",
    "Time to answer an HTTP request, by URL rule, method and status.",
    ("endpoint", "method", "status"),
    buckets=_REQUEST_BUCKETS,
)
DB_QUERY_DURATION = Histogram(
    "steadfast_db_query_duration_seconds",
    "Time of one database statement, by its first SQL keyword.",
    ("operation",),
    buckets=_QUERY_BUCKETS,
)
LOOP_LAG = Histogram(
    "steadfast_loop_lag_seconds",
    "How late the loop-latency sampler woke up, per sample.",
    buckets=_LAG_BUCKETS,
)
# One series per worker ("liveall"): the figures of its last report window.
LOOP_LAG_P99 = Gauge(
    "steadfast_loop_lag_p99_seconds",
    "p99 of the sampler's lateness over its last report window, per worker.",
    multiprocess_mode="liveall",
)
LOOP_LAG_MAX = Gauge(
    "steadfast_loop_lag_max_seconds",
    "Largest lateness of the sampler over its last report window, per worker.",
    multiprocess_mode="liveall",
)
RATE_LIMIT_REJECTIONS = Counter(
    "steadfast_rate_limit_rejections_total",
    "Requests refused with 429 by the rate limiter, by the limit's scope.",
    ("scope",),
)
AUTH_FAILURES = Counter(
    "steadfast_auth_failures_total",
    "Requests answered 401 (bad credentials, missing or invalid token), by URL rule.",
    ("endpoint",),
)
EMAILS = Counter(
    "steadfast_emails_total",
    "Emails handed to the mail backend, by outcome (sent or failed).",
    ("outcome",),
)


def record_rate_limit_rejection(scope: str = "unknown") -> None:
    RATE_LIMIT_REJECTIONS.labels(scope=scope or "unknown").inc()


def on_rate_limit_rejected(sender: object, scope: str = "", **details: object) -> None:
    """Receiver for app.middlewares.rate_limits.rate_limit_rejected (a blinker signal)."""
    record_rate_limit_rejection(scope)


def record_auth_failure(endpoint: str) -> None:
    AUTH_FAILURES.labels(endpoint=endpoint).inc()


def record_email(sent: bool) -> None:
    EMAILS.labels(outcome="sent" if sent else "failed").inc()


def observe_query(operation: str, duration_s: float) -> None:
    DB_QUERY_DURATION.labels(operation=operation).observe(duration_s)


def observe_loop_lag(lag_ms: float) -> None:
    LOOP_LAG.observe(lag_ms / 1000)


def set_loop_lag_figures(figures: LagFigures) -> None:
    LOOP_LAG_P99.set(figures.p99_ms / 1000)
    LOOP_LAG_MAX.set(figures.max_ms / 1000)


def render() -> tuple[bytes, str]:
    """The exposition text: merged over every worker's files in multiprocess mode."""
    if MULTIPROCESS:
        registry = CollectorRegistry()
        prometheus_multiprocess.MultiProcessCollector(registry)
        return generate_latest(registry), CONTENT_TYPE_LATEST
    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST


def mark_process_dead(pid: int) -> None:
    """Drop a dead worker's live gauges (its counters stay in the totals)."""
    if MULTIPROCESS:
        prometheus_multiprocess.mark_process_dead(pid)


def _endpoint_label() -> str:
    # The URL rule, not the raw path: one series per route, whatever ids clients send.
    rule = request.url_rule
    return rule.rule if rule is not None else UNMATCHED_ENDPOINT


def _start_timer() -> None:
    g.metrics_started = time.perf_counter()


# (endpoint, method, status) -> the two series of that request kind. prometheus_client's
# labels() validates, locks and builds its key on every call; the set of kinds is small and
# bounded (URL rules x methods x statuses), so each is looked up once per process.
_request_series: dict[tuple[str, str, int], tuple[Counter, Histogram]] = {}


def _series_for(endpoint: str, method: str, status: int) -> tuple[Counter, Histogram]:
    key = (endpoint, method, status)
    series = _request_series.get(key)
    if series is None:
        labels = {"endpoint": endpoint, "method": method, "status": str(status)}
        series = (HTTP_REQUESTS.labels(**labels), HTTP_REQUEST_DURATION.labels(**labels))
        _request_series[key] = series
    return series


def _record_request(response: Response) -> Response:
    started = g.get("metrics_started")
    duration_s = None if started is None else time.perf_counter() - started
    record_request(_endpoint_label(), request.method, response.status_code, duration_s)
    return response


def record_request(endpoint: str, method: str, status: int, duration_s: float | None) -> None:
    """Count one request of `endpoint` (its URL rule) and observe its duration, if known."""
    if method not in _KNOWN_METHODS:
        method = OTHER_METHOD
    count, duration = _series_for(endpoint, method, status)
    count.inc()
    if duration_s is not None:
        duration.observe(duration_s)
    if status == 401:
        record_auth_failure(endpoint)


def connect_rate_limit_rejections() -> None:
    from app.middlewares.rate_limits import rate_limit_rejected

    # Connecting the same receiver again is a no-op, so every create_app may call this.
    rate_limit_rejected.connect(on_rate_limit_rejected)


def init_request_metrics(app: Flask) -> None:
    # First in line, so the time of every other before_request hook is counted too, and a
    # request refused by an earlier hook (415, 429) still has its start time.
    app.before_request_funcs.setdefault(None, []).insert(0, _start_timer)
    app.after_request(_record_request)
