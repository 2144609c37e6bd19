"""Readiness under a real gunicorn: SIGTERM turns it to 503 while in-flight requests finish."""

from __future__ import annotations

import os
import signal
import threading
import time

import pytest
import requests

from tests.processes import gunicorn_server, migrated_sqlite_environment

pytestmark = pytest.mark.slow


def wait_for_file(path, deadline_s: float = 10.0) -> None:
    give_up_at = time.monotonic() + deadline_s
    while not path.exists():
        assert time.monotonic() < give_up_at, f"{path} did not appear within {deadline_s} s"
        time.sleep(0.02)


def test_readiness_turns_503_on_sigterm_while_in_flight_requests_finish(tmp_path):
    environment = migrated_sqlite_environment(tmp_path, LOG_FORMAT="json")
    log_path = tmp_path / "gunicorn.log"
    with gunicorn_server(environment, log_path, app_module="tests.apps.faulty:app") as server:
        kept_alive = requests.Session()
        before = kept_alive.get(f"{server.base_url}/health/ready", timeout=10)
        worker = kept_alive.get(f"{server.base_url}/_test/pid", timeout=10).json()["pid"]
        marker = tmp_path / "in-flight"
        in_flight: dict = {}

        def slow_request() -> None:
            in_flight["response"] = requests.get(
                f"{server.base_url}/_test/in-flight",
                params={"marker": str(marker), "seconds": "1.5"},
                timeout=20,
            )

        client = threading.Thread(target=slow_request)
        client.start()
        wait_for_file(marker)

        os.kill(worker, signal.SIGTERM)
        # A request on a kept-alive connection is still answered while the worker drains.
        during = kept_alive.get(f"{server.base_url}/health/ready", timeout=10)
        client.join(timeout=20)

    assert before.status_code == 200
    assert during.status_code == 503
    assert during.json()["status"] == "shutting_down"
    finished = in_flight["response"]
    assert finished.status_code == 200
    assert finished.json() == {"pid": worker, "shutting_down": True}
