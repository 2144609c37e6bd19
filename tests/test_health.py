"""/health, /health/live and /health/ready as SPEC section 4 describes them."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from app import create_app
from app.extensions import db
from app.monitoring import process
from app.monitoring.health import overall_status
from tests.processes import free_port

CHECKS = {"database", "redis", "memory", "loop_lag"}


@contextmanager
def silent_listener() -> Iterator[int]:
    """A TCP port that accepts connections and never says a word: a hung dependency."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def accept_forever() -> None:
        server.settimeout(0.1)
        while not stop.is_set():
            try:
                connection, _ = server.accept()
            except OSError:
                continue
            accepted.append(connection)

    thread = threading.Thread(target=accept_forever, daemon=True)
    thread.start()
    try:
        yield server.getsockname()[1]
    finally:
        stop.set()
        thread.join(2)
        for connection in accepted:
            connection.close()
        server.close()


def timed_get(client, path):
    started = time.monotonic()
    response = client.get(path)
    return response, time.monotonic() - started


@pytest.fixture
def calm_client(make_app):
    """A client whose memory and loop-lag thresholds a busy test machine cannot cross, so
    only the dependency checks decide the status."""
    return make_app(MEMORY_THRESHOLD_MB="1000000", LOOP_LAG_THRESHOLD_MS="1000000").test_client()


def test_health_reports_every_check_with_status_and_latency(calm_client):
    response = calm_client.get("/health")

    assert response.status_code == 200
    body = response.get_json()
    assert set(body) == {"status", "uptime_s", "timestamp", "version", "checks"}
    assert body["status"] == "ok"
    assert body["version"] == "0.1.0"
    assert body["uptime_s"] >= 0
    assert body["timestamp"].endswith("Z")
    assert set(body["checks"]) == CHECKS
    for name, check in body["checks"].items():
        assert "status" in check and "latency_ms" in check, name
    assert body["checks"]["database"]["status"] == "ok"
    assert body["checks"]["memory"]["rss_mb"] > 0
    assert "p99_ms" in body["checks"]["loop_lag"]
    assert response.headers["Cache-Control"] == "no-store"


def test_health_without_redis_reports_it_not_configured_not_down(calm_client):
    body = calm_client.get("/health").get_json()

    assert body["checks"]["redis"]["status"] == "not_configured"
    assert body["status"] == "ok"


def test_health_pings_redis_when_configured(make_app, redis_url):
    body = make_app(REDIS_URL=redis_url).test_client().get("/health").get_json()

    assert body["checks"]["redis"]["status"] == "ok"
    assert body["checks"]["redis"]["latency_ms"] >= 0


def test_health_is_degraded_but_200_when_redis_hangs_and_answers_within_a_second(make_app):
    with silent_listener() as port:
        client = make_app(REDIS_URL=f"redis://127.0.0.1:{port}/0").test_client()
        response, elapsed_s = timed_get(client, "/health")

    assert response.status_code == 200
    body = response.get_json()
    assert body["status"] == "degraded"
    assert body["checks"]["redis"]["status"] == "down"
    assert body["checks"]["database"]["status"] == "ok"
    assert elapsed_s < 1.6, f"/health took {elapsed_s:.2f} s"


def test_health_is_down_with_503_within_a_second_when_the_database_hangs():
    with silent_listener() as port:
        app = create_app(
            {"APP_ENV": "test", "DATABASE_URL": f"postgresql://postgres@127.0.0.1:{port}/hung"}
        )
        client = app.test_client()
        first, first_s = timed_get(client, "/health")
        # The first probe is still stuck: the next check must not wait for it again.
        second, second_s = timed_get(client, "/health")
        with app.app_context():
            db.engine.dispose()

    assert first.status_code == 503
    body = first.get_json()
    assert body["status"] == "down"
    assert body["checks"]["database"] == {
        "status": "down",
        "latency_ms": body["checks"]["database"]["latency_ms"],
        "error": "timed out after 1000 ms",
    }
    assert first_s < 1.6, f"/health took {first_s:.2f} s"
    assert second.status_code == 503
    assert "still pending" in second.get_json()["checks"]["database"]["error"]
    assert second_s < 0.5


def test_health_is_down_when_the_database_refuses_connections():
    refused_port = free_port()
    app = create_app(
        {"APP_ENV": "test", "DATABASE_URL": f"postgresql://postgres@127.0.0.1:{refused_port}/x"}
    )

    response = app.test_client().get("/health")

    assert response.status_code == 503
    database = response.get_json()["checks"]["database"]
    assert database["status"] == "down"
    # The class name only: no host, port or credentials in a public answer.
    assert "127.0.0.1" not in database["error"]


def test_health_timeout_is_configurable_below_a_second(make_app):
    with silent_listener() as port:
        client = make_app(REDIS_URL=f"redis://127.0.0.1:{port}/0", HEALTH_TIMEOUT_MS="200")
        response, elapsed_s = timed_get(client.test_client(), "/health")

    assert response.get_json()["checks"]["redis"]["error"] == "timed out after 200 ms"
    assert elapsed_s < 0.8


def test_health_is_degraded_when_memory_is_over_its_threshold(make_app):
    body = make_app(MEMORY_THRESHOLD_MB="16").test_client().get("/health").get_json()

    assert body["checks"]["memory"]["status"] == "degraded"
    assert body["checks"]["memory"]["threshold_mb"] == 16
    assert body["status"] == "degraded"


@pytest.mark.parametrize(
    ("statuses", "expected"),
    [
        ({"database": "ok", "redis": "ok", "memory": "ok", "loop_lag": "ok"}, "ok"),
        ({"database": "ok", "redis": "not_configured", "memory": "ok", "loop_lag": "ok"}, "ok"),
        ({"database": "ok", "redis": "down", "memory": "ok", "loop_lag": "ok"}, "degraded"),
        ({"database": "ok", "redis": "ok", "memory": "degraded", "loop_lag": "ok"}, "degraded"),
        ({"database": "ok", "redis": "ok", "memory": "ok", "loop_lag": "degraded"}, "degraded"),
        ({"database": "down", "redis": "ok", "memory": "ok", "loop_lag": "ok"}, "down"),
    ],
)
def test_overall_status_rules(statuses, expected):
    checks = {name: {"status": status} for name, status in statuses.items()}

    assert overall_status(checks) == expected


def test_live_answers_without_calling_any_dependency():
    with silent_listener() as port:
        app = create_app(
            {"APP_ENV": "test", "DATABASE_URL": f"postgresql://postgres@127.0.0.1:{port}/hung"}
        )
        response, elapsed_s = timed_get(app.test_client(), "/health/live")

    assert response.status_code == 200
    assert set(response.get_json()) == {"status", "uptime_s", "timestamp", "version"}
    assert elapsed_s < 0.5


def test_ready_is_200_when_dependencies_answer(client):
    response = client.get("/health/ready")

    assert response.status_code == 200
    assert response.get_json()["status"] == "ready"


def test_ready_is_503_when_a_dependency_is_unreachable(make_app):
    refused_port = free_port()
    client = make_app(REDIS_URL=f"redis://127.0.0.1:{refused_port}/0").test_client()

    response = client.get("/health/ready")

    assert response.status_code == 503
    body = response.get_json()
    assert body["status"] == "not_ready"
    assert body["checks"]["redis"]["status"] == "down"


def test_ready_is_503_while_the_worker_shuts_down(client):
    process.mark_shutting_down()
    try:
        response = client.get("/health/ready")
        health = client.get("/health")
    finally:
        process.clear_shutting_down()

    assert response.status_code == 503
    assert response.get_json()["status"] == "shutting_down"
    # Shutting down is about taking traffic, not about health.
    assert health.status_code == 200


def test_health_endpoints_need_no_authentication(client):
    for path in ("/health", "/health/live", "/health/ready"):
        assert client.get(path).status_code == 200, path


def test_a_probe_timeout_over_one_second_is_refused_at_start_up():
    from app.config import ConfigError, load_settings

    with pytest.raises(ConfigError, match="HEALTH_TIMEOUT_MS"):
        load_settings({"APP_ENV": "test", "HEALTH_TIMEOUT_MS": "5000"})


def test_concurrent_health_checks_share_the_probe_in_flight_instead_of_failing(calm_client):
    statuses: list[int] = []

    def check_repeatedly() -> None:
        for _ in range(10):
            statuses.append(calm_client.get("/health").status_code)

    threads = [threading.Thread(target=check_repeatedly) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert statuses == [200] * 80
