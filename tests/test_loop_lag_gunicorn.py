"""The sampler under a real gunicorn: started by post_fork, it warns when a request blocks."""

from __future__ import annotations

import pytest
import requests

from tests.gunicorn_logs import json_records, wait_for_log
from tests.processes import gunicorn_server, migrated_sqlite_environment

pytestmark = pytest.mark.slow


def test_a_request_holding_the_gil_makes_its_worker_warn(tmp_path):
    environment = migrated_sqlite_environment(
        tmp_path, LOG_FORMAT="json", LOOP_LAG_REPORT_S="1", LOOP_LAG_THRESHOLD_MS="50"
    )
    log_path = tmp_path / "gunicorn.log"
    with gunicorn_server(environment, log_path, app_module="tests.apps.faulty:app") as server:
        worker = requests.get(f"{server.base_url}/_test/pid", timeout=10).json()["pid"]
        # A quiet report first, so the warning below is the request's doing, not boot's.
        quiet = wait_for_log(
            server,
            lambda r: r.get("pid") == worker and r.get("loop_lag_p99_ms", 1e9) < 50,
        )
        reports_so_far = len([r for r in json_records(server.logs()) if "loop_lag_p99_ms" in r])

        assert requests.get(f"{server.base_url}/_test/hog?seconds=0.4", timeout=20).ok

        warning = wait_for_log(
            server,
            lambda r: "loop_lag_p99_ms" in r and r["level"] == "WARNING" and r["ts"] > quiet["ts"],
        )
        health = requests.get(f"{server.base_url}/health", timeout=10).json()

    assert reports_so_far >= 1
    assert warning["pid"] == worker
    assert warning["loop_lag_max_ms"] > 200
    assert warning["message"].startswith("loop lag over threshold")
    # /health shows the last report of the worker that answered it.
    assert health["checks"]["loop_lag"]["threshold_ms"] == 50
