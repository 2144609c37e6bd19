"""/metrics under a real 2-worker gunicorn: one answer that sums every worker's numbers."""

from __future__ import annotations

import os
import re
import signal
import time
from pathlib import Path

import pytest
import requests
from prometheus_client.multiprocess import MultiProcessCollector

from tests.processes import gunicorn_server, run_flask

pytestmark = pytest.mark.slow

LIVE_LABELS = {"endpoint": "/health/live", "method": "GET", "status": "200"}
LIVE_SERIES = 'steadfast_http_requests_total{endpoint="/health/live",method="GET",status="200"}'


def metric_value(text: str, series: str) -> float:
    for line in text.splitlines():
        if line.startswith(series + " "):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def loop_lag_pids(text: str) -> set[str]:
    return set(re.findall(r'steadfast_loop_lag_p99_seconds\{pid="(\d+)"\}', text))


def live_requests_by_worker(directory: Path) -> dict[str, float]:
    """Each worker's own count of /health/live, read from its file in the metrics directory."""
    counts = {}
    for path in directory.glob("counter_*.db"):
        pid = path.stem.split("_")[-1]
        for metric in MultiProcessCollector.merge([str(path)]):
            for sample in metric.samples:
                if sample.name == "steadfast_http_requests_total" and sample.labels == LIVE_LABELS:
                    counts[pid] = sample.value
    return counts


def poll(fetch, predicate, deadline_s: float = 20.0):
    give_up_at = time.monotonic() + deadline_s
    while True:
        value = fetch()
        if predicate(value) or time.monotonic() > give_up_at:
            assert predicate(value), f"condition not met within {deadline_s} s: {value!r}"
            return value
        time.sleep(0.1)


@pytest.fixture
def served_environment(tmp_path):
    metrics_dir = tmp_path / "metrics"
    metrics_dir.mkdir()
    # Left over from a previous run: summed in, it would corrupt (here: break) every answer.
    (metrics_dir / "counter_1.db").write_bytes(b"stale")
    environment = {
        **os.environ,
        "APP_ENV": "development",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'metrics.db'}",
        "WEB_CONCURRENCY": "2",
        "LOOP_LAG_REPORT_S": "1",
        "LOG_FORMAT": "json",
        "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir),
    }
    migrated = run_flask(environment, "db", "upgrade")
    assert migrated.returncode == 0, migrated.stderr
    return environment


def test_metrics_sum_the_requests_and_loop_lag_of_both_workers(served_environment, tmp_path):
    metrics_dir = Path(served_environment["PROMETHEUS_MULTIPROC_DIR"])
    with gunicorn_server(served_environment, tmp_path / "gunicorn.log") as server:

        def fetch() -> str:
            response = requests.get(f"{server.base_url}/metrics", timeout=5)
            assert response.status_code == 200, response.text
            return response.text

        def live_request() -> None:
            # A fresh connection each time, so either worker may accept it.
            response = requests.get(
                f"{server.base_url}/health/live", headers={"Connection": "close"}, timeout=5
            )
            assert response.status_code == 200

        # Each worker's sampler reports after a second; both show up in one answer.
        poll(fetch, lambda text: len(loop_lag_pids(text)) == 2)
        assert not (metrics_dir / "counter_1.db").exists()

        # Until both workers have served some: the kernel decides who accepts.
        for _ in range(20):
            live_request()
        poll(
            lambda: (live_request(), live_requests_by_worker(metrics_dir))[1],
            lambda counts: len(counts) == 2 and all(counts.values()),
        )
        per_worker = live_requests_by_worker(metrics_dir)
        text = fetch()
        assert metric_value(text, LIVE_SERIES) == sum(per_worker.values())
        assert "steadfast_loop_lag_seconds_count" in text
        assert 'steadfast_http_request_duration_seconds_bucket{endpoint="/health/live"' in text

        # A worker that goes away leaves its counts in the totals, not its live gauges.
        gone = sorted(loop_lag_pids(text))[0]
        os.kill(int(gone), signal.SIGTERM)
        text = poll(fetch, lambda text: gone not in loop_lag_pids(text))
        assert metric_value(text, LIVE_SERIES) == sum(per_worker.values())
