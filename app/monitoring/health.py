"""The health report of SPEC section 4: dependency probes, memory, loop lag, overall status."""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.engine import Engine

from app.config import Settings
from app.monitoring import probes, process
from app.monitoring.loop_lag import current_sampler

OK, DEGRADED, DOWN = "ok", "degraded", "down"
NOT_CONFIGURED = "not_configured"
# Losing the database makes the service useless; anything else leaves it working, less well
# (Redis-backed limits fall back to memory, emails are sent inline).
_CRITICAL_CHECKS = frozenset({"database"})


@dataclass
class HealthReport:
    status: str
    checks: dict[str, dict[str, Any]]
    body: dict[str, Any]


def _timestamp() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def probe_dependencies(
    engine: Engine, redis_client: Any, timeout_s: float
) -> dict[str, dict[str, Any]]:
    """Database and Redis probed concurrently: the whole check takes at most `timeout_s`."""
    deadline = time.perf_counter() + timeout_s
    database = probes.start_probe(f"database:{id(engine)}", probes.select_one(engine), timeout_s)
    redis = None
    if redis_client is not None:
        redis = probes.start_probe(
            f"redis:{id(redis_client)}", probes.ping(redis_client), timeout_s
        )
    checks = {"database": probes.finish_probe(database, deadline, timeout_s).as_dict()}
    if redis is None:
        checks["redis"] = {"status": NOT_CONFIGURED, "latency_ms": 0.0}
    else:
        checks["redis"] = probes.finish_probe(redis, deadline, timeout_s).as_dict()
    return checks


def memory_check(threshold_mb: int) -> dict[str, Any]:
    started = time.perf_counter()
    rss_mb = round(process.rss_bytes() / (1024 * 1024), 1)
    return {
        "status": OK if rss_mb <= threshold_mb else DEGRADED,
        "latency_ms": round((time.perf_counter() - started) * 1000, 2),
        "rss_mb": rss_mb,
        "threshold_mb": threshold_mb,
    }


def loop_lag_check(threshold_ms: int) -> dict[str, Any]:
    sampler = current_sampler()
    if sampler is None:
        return {"status": NOT_CONFIGURED, "latency_ms": 0.0, "threshold_ms": threshold_ms}
    figures = sampler.figures()
    return {
        "status": OK if figures.p99_ms <= threshold_ms else DEGRADED,
        "latency_ms": 0.0,
        "p50_ms": figures.p50_ms,
        "p99_ms": figures.p99_ms,
        "max_ms": figures.max_ms,
        "samples": figures.samples,
        "threshold_ms": threshold_ms,
    }


def overall_status(checks: dict[str, dict[str, Any]]) -> str:
    statuses = {name: check["status"] for name, check in checks.items()}
    if any(statuses.get(name) == DOWN for name in _CRITICAL_CHECKS):
        return DOWN
    if any(status in (DOWN, DEGRADED) for status in statuses.values()):
        return DEGRADED
    return OK


def health_report(settings: Settings, engine: Engine, redis_client: Any) -> HealthReport:
    checks = probe_dependencies(engine, redis_client, settings.health_timeout_ms / 1000)
    checks["memory"] = memory_check(settings.memory_threshold_mb)
    checks["loop_lag"] = loop_lag_check(settings.loop_lag_threshold_ms)
    status = overall_status(checks)
    body = {
        "status": status,
        "uptime_s": round(process.uptime_s(), 1),
        "timestamp": _timestamp(),
        "version": settings.version,
        "checks": checks,
    }
    return HealthReport(status, checks, body)


def liveness_body(settings: Settings) -> dict[str, Any]:
    return {
        "status": OK,
        "uptime_s": round(process.uptime_s(), 1),
        "timestamp": _timestamp(),
        "version": settings.version,
    }


def readiness_report(
    settings: Settings, engine: Engine, redis_client: Any
) -> tuple[bool, dict[str, Any]]:
    """Ready when not shutting down and every configured dependency answers."""
    if process.is_shutting_down():
        return False, {"status": "shutting_down", "timestamp": _timestamp(), "checks": {}}
    checks = probe_dependencies(engine, redis_client, settings.health_timeout_ms / 1000)
    ready = all(check["status"] in (OK, NOT_CONFIGURED) for check in checks.values())
    return ready, {
        "status": "ready" if ready else "not_ready",
        "timestamp": _timestamp(),
        "checks": checks,
    }
