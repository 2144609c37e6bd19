"""Soak: about two minutes of mixed traffic against a 2-worker gunicorn on PostgreSQL and Redis.

Zero 5xx, zero connection errors, and no worker growing its memory by 10 % or more once warm.
The figures are printed (`pytest -s -m soak`). Skip locally with `-m "not soak"`;
SOAK_SECONDS shortens or lengthens the measured phase (default 120).

Memory is compared settled, before and after the measured load: each time the load pauses
and the workers idle past the hashing thread's release delay, so what is compared is what a
worker keeps, not where its allocator happens to be mid-burst. Under load a worker holds one
argon2id buffer (19 MiB), now and then a second one until the trimmer gives it back
(app/malloc.py): peaks compared under load read +19.6 % in one CI run, one buffer's worth. A
leak survives the pause; the peaks under load are still printed.
"""

from __future__ import annotations

import json
import os
import secrets
import statistics
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest
import requests

from app.services.passwords import IDLE_RELEASE_S
from deploy.cluster.local import child_pids
from tests.processes import gunicorn_server, run_flask
from tests.services import temporary_postgres_database
from tests.traffic import (
    STRONG_PASSWORD,
    BackgroundLoad,
    Outcome,
    bearer,
    call,
    unique_email,
)

pytestmark = [pytest.mark.slow, pytest.mark.soak]

SOAK_SECONDS = float(os.environ.get("SOAK_SECONDS", "120"))
WARM_UP_SECONDS = 20.0
CLIENT_THREADS = 4
MAX_RSS_GROWTH = 0.10
# Past the hashing thread's release delay, with a margin for the release itself.
SETTLE_SECONDS = IDLE_RELEASE_S + 1.0


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise LookupError(f"no VmRSS for {pid}")


def peak_rss_kib(pids: list[int], samples: int = 6, interval_s: float = 0.5) -> dict[int, int]:
    """Each worker's largest RSS over a few seconds of load (reported, not judged)."""
    peaks = {pid: 0 for pid in pids}
    for sample in range(samples):
        if sample:
            time.sleep(interval_s)
        for pid in pids:
            peaks[pid] = max(peaks[pid], rss_kib(pid))
    return peaks


def settled_rss_kib(pids: list[int]) -> dict[int, int]:
    """Each worker's RSS once the load has stopped and the hashing thread has let go."""
    time.sleep(SETTLE_SECONDS)
    return {pid: rss_kib(pid) for pid in pids}


def route_exists(base_url: str, method: str, path: str) -> bool:
    response = requests.request(method, base_url + path, timeout=10)
    return not (response.status_code == 404 and response.json().get("code") == "not_found")


def mixed_journey(
    base_url: str, with_refresh: bool, with_health: bool
) -> Callable[[requests.Session], list[Outcome]]:
    """Register, log in, read /users/me three times, refresh, check health."""

    def step(client: requests.Session) -> list[Outcome]:
        credentials = {"email": unique_email("soak"), "password": STRONG_PASSWORD}
        outcomes = [call(client, "register", "POST", f"{base_url}/api/v1/users", json=credentials)]
        login = call(client, "login", "POST", f"{base_url}/api/v1/auth/login", json=credentials)
        outcomes.append(login)
        if login.status != 200:
            return outcomes
        tokens = login.body["data"]
        for _ in range(3):
            outcomes.append(
                call(
                    client,
                    "me",
                    "GET",
                    f"{base_url}/api/v1/users/me",
                    headers=bearer(tokens["access_token"]),
                )
            )
        if with_refresh:
            outcomes.append(
                call(
                    client,
                    "refresh",
                    "POST",
                    f"{base_url}/api/v1/auth/refresh",
                    json={"refresh_token": tokens["refresh_token"]},
                )
            )
        if with_health:
            outcomes.append(call(client, "health", "GET", f"{base_url}/health"))
        return outcomes

    return step


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def test_two_minutes_of_mixed_traffic_give_no_5xx_and_no_memory_growth(
    tmp_path: Path, redis_url: str
) -> None:
    with temporary_postgres_database("steadfast_soak") as database_url:
        environment = {
            **os.environ,
            "APP_ENV": "staging",
            "DATABASE_URL": database_url,
            "REDIS_URL": redis_url,
            "JWT_SECRET": secrets.token_urlsafe(48),
            "LOG_FORMAT": "json",
            "WEB_CONCURRENCY": "2",
            "GUNICORN_THREADS": "4",
            "RATE_LIMIT_AUTH": "100000 per minute",
            "RATE_LIMIT_DEFAULT": "100000 per minute",
            # No recycling during the soak: the same workers are measured from start to end.
            "GUNICORN_CMD_ARGS": "--max-requests 0",
        }
        migrated = run_flask(environment, "db", "upgrade")
        assert migrated.returncode == 0, migrated.stderr
        with gunicorn_server(environment, tmp_path / "gunicorn.log") as server:
            with_refresh = route_exists(server.base_url, "POST", "/api/v1/auth/refresh")
            with_health = route_exists(server.base_url, "GET", "/health")
            load = BackgroundLoad(
                mixed_journey(server.base_url, with_refresh, with_health), threads=CLIENT_THREADS
            ).start()
            try:
                time.sleep(WARM_UP_SECONDS)  # traffic runs meanwhile; this is the warm-up
                workers = child_pids(server.process.pid)
                # Paused, not stopped: the clients keep their connections, so each worker
                # goes on serving what it served while warming up.
                load.pause()
                baseline = settled_rss_kib(workers)
                load.resume()
                measured_from = time.monotonic()
                time.sleep(SOAK_SECONDS)
                peaks_under_load = peak_rss_kib(workers)
                load.pause()
                final = settled_rss_kib(workers)
                workers_after = child_pids(server.process.pid)
            finally:
                outcomes = load.stop()

    measured = [o for o in outcomes if o.started_at >= measured_from]
    statuses = Counter(o.label for o in outcomes)
    by_call = {
        name: dict(Counter(o.label for o in outcomes if o.name == name))
        for name in sorted({o.name for o in outcomes})
    }
    latencies_ms = [o.elapsed_s * 1000 for o in measured]
    growth = {pid: (final[pid] - baseline[pid]) / baseline[pid] for pid in workers}
    figures = {
        "seconds_measured": SOAK_SECONDS,
        "requests_total": len(outcomes),
        "requests_per_s": round(len(measured) / SOAK_SECONDS, 1),
        "statuses": dict(statuses),
        "by_call": by_call,
        "calls_not_in_this_build": [
            name
            for name, present in (("refresh", with_refresh), ("health", with_health))
            if not present
        ],
        "latency_ms": {
            "p50": round(statistics.median(latencies_ms), 1),
            "p95": round(percentile(latencies_ms, 0.95), 1),
            "p99": round(percentile(latencies_ms, 0.99), 1),
            "max": round(max(latencies_ms), 1),
        },
        "worker_rss_kib": {str(pid): [baseline[pid], final[pid]] for pid in workers},
        "worker_peak_rss_under_load_kib": {str(pid): peaks_under_load[pid] for pid in workers},
        "worker_rss_growth_pct": {str(pid): round(100 * g, 2) for pid, g in growth.items()},
    }
    print("\n[soak report] " + json.dumps(figures, sort_keys=True))

    assert not [o for o in outcomes if o.status is None], "connection errors"
    assert not [o for o in outcomes if o.status >= 500], "5xx answers"
    assert workers_after == workers, "a worker died or was replaced during the soak"
    assert all(g < MAX_RSS_GROWTH for g in growth.values()), figures["worker_rss_growth_pct"]
    unexpected = {label for label in statuses if label not in ("200", "201")}
    assert not unexpected, by_call
