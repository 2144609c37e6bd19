"""Uncaught errors under a real gunicorn: a crashed thread and a stuck worker are replaced,
each leaves a log saying where, and the master keeps serving."""

from __future__ import annotations

import contextlib
import threading
import time

import pytest
import requests

from tests.gunicorn_logs import wait_for_log, wait_for_text
from tests.processes import gunicorn_server, migrated_sqlite_environment

pytestmark = pytest.mark.slow

FAULTY_APP = "tests.apps.faulty:app"


@pytest.fixture
def environment(tmp_path):
    return migrated_sqlite_environment(tmp_path, LOG_FORMAT="json", GUNICORN_TIMEOUT="2")


def worker_pid(server) -> int:
    return requests.get(f"{server.base_url}/_test/pid", timeout=10).json()["pid"]


def wait_for_new_worker(server, old_pid: int, deadline_s: float = 30.0) -> int:
    """Poll until a worker other than `old_pid` answers (requests in between may fail)."""
    give_up_at = time.monotonic() + deadline_s
    while time.monotonic() < give_up_at:
        try:
            pid = worker_pid(server)
        except requests.RequestException:
            pid = old_pid
        if pid != old_pid:
            return pid
        time.sleep(0.1)
    raise AssertionError(f"worker {old_pid} was not replaced within {deadline_s} s")


def test_an_exception_escaping_a_thread_is_fatal_and_the_worker_is_replaced(environment, tmp_path):
    with gunicorn_server(environment, tmp_path / "gunicorn.log", app_module=FAULTY_APP) as server:
        crashed = worker_pid(server)

        assert requests.get(f"{server.base_url}/_test/crash-thread", timeout=10).ok

        fatal = wait_for_log(server, lambda r: r.get("fatal") and r["level"] == "CRITICAL")
        replacement = wait_for_new_worker(server, crashed)
        assert server.process.poll() is None, "the master must survive a worker's crash"
        assert requests.get(f"{server.base_url}/health/live", timeout=10).status_code == 200

    assert fatal["pid"] == crashed and fatal["thread"] == "failing-job"
    assert "uncaught RuntimeError in thread failing-job" in fatal["message"]
    assert "background job failed on purpose" in fatal["stack"]
    assert "failing_background_job" in fatal["stack"]
    logs = server.logs()
    # Graceful: the worker left through its normal exit path, not a kill.
    assert f"Worker exiting (pid: {crashed})" in logs
    assert replacement != crashed


def test_a_worker_stuck_past_the_timeout_logs_every_threads_stack(environment, tmp_path):
    with gunicorn_server(environment, tmp_path / "gunicorn.log", app_module=FAULTY_APP) as server:
        stuck = worker_pid(server)

        assert requests.get(f"{server.base_url}/_test/stall-main-thread", timeout=10).ok

        aborted = wait_for_log(
            server, lambda r: "aborted after the timeout" in r.get("message", "")
        )
        wait_for_new_worker(server, stuck)
        assert server.process.poll() is None

    assert aborted["level"] == "CRITICAL" and aborted["pid"] == stuck
    stacks = aborted["thread_stacks"]
    main_stack = next(stack for name, stack in stacks.items() if name.startswith("MainThread"))
    assert "stall_main_thread" in main_stack
    assert "WORKER TIMEOUT" in server.logs()


def test_a_worker_holding_the_gil_past_the_timeout_still_shows_where(environment, tmp_path):
    with gunicorn_server(environment, tmp_path / "gunicorn.log", app_module=FAULTY_APP) as server:
        stuck = worker_pid(server)

        def hog() -> None:
            # The worker is killed under this request; that is the point.
            with contextlib.suppress(requests.RequestException):
                requests.get(f"{server.base_url}/_test/hog?seconds=20", timeout=40)

        client = threading.Thread(target=hog, daemon=True)
        client.start()

        # faulthandler writes from the SIGABRT handler itself, while the call holds the lock.
        logs = wait_for_text(server, "in hold_the_gil", deadline_s=30)
        wait_for_new_worker(server, stuck, deadline_s=40)
        assert server.process.poll() is None
        client.join(timeout=40)

    assert "WORKER TIMEOUT" in logs
    assert "tests/apps/faulty.py" in logs
