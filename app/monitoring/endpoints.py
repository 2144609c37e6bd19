"""/health, /health/live, /health/ready and /metrics: no auth, no envelope, cheap to call."""

from __future__ import annotations

import hmac

from flask import Blueprint, Response, jsonify, request

from app.errors import NotFoundError, UnauthorizedError
from app.extensions import db
from app.monitoring import metrics
from app.monitoring.health import DOWN, health_report, liveness_body, readiness_report
from app.state import app_state, settings

blp = Blueprint("monitoring", __name__)
# Probes and scrapers must never see a cached answer.
_NO_STORE = {"Cache-Control": "no-store"}


def _json(body: dict, status: int) -> Response:
    response = jsonify(body)
    response.status_code = status
    response.headers.update(_NO_STORE)
    return response


@blp.get("/health")
def health() -> Response:
    """Status of the process and its dependencies: 200 ok or degraded, 503 down."""
    report = health_report(settings(), db.engine, app_state().redis)
    return _json(report.body, 503 if report.status == DOWN else 200)


@blp.get("/health/live")
def live() -> Response:
    """The process answers; no dependency is called (a restart would not fix one)."""
    return _json(liveness_body(settings()), 200)


@blp.get("/health/ready")
def ready() -> Response:
    """Take traffic? 503 while shutting down or while a dependency is unreachable."""
    is_ready, body = readiness_report(settings(), db.engine, app_state().redis)
    return _json(body, 200 if is_ready else 503)


@blp.get("/metrics")
def prometheus_metrics() -> Response:
    """Prometheus text; in production only with `Authorization: Bearer <METRICS_TOKEN>`."""
    config = settings()
    if config.is_production and not config.metrics_token:
        # Disabled rather than public: metrics reveal traffic and routes.
        raise NotFoundError("The requested URL was not found.")
    if config.metrics_token and not _bearer_matches(config.metrics_token):
        raise UnauthorizedError("A valid metrics token is required.")
    payload, content_type = metrics.render()
    return Response(payload, status=200, content_type=content_type, headers=_NO_STORE)


def _bearer_matches(expected: str) -> bool:
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(
        token.strip().encode(), expected.encode()
    )
