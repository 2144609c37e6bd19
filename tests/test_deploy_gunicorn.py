"""gunicorn as deployed: settings from the environment, reloads, shutdowns and crashes."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import threading
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.deploy_support import SteadyLoad, child_pids, wait_for, write_artifact
from tests.processes import BIN_DIR, REPO_ROOT, RunningServer, gunicorn_server
from tests.services import temporary_postgres_database

pytestmark = pytest.mark.slow

TEST_APP = "tests.apps.slow:app"
# /health/live comes with the health endpoints; until then any JSON answer (a 404) means serving.
READY_PATH = "/"


def served_environment(tmp_path: Path, **extra: str) -> dict[str, str]:
    return {
        "APP_ENV": "development",
        "LOG_FORMAT": "json",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'served.db'}",
        "WEB_CONCURRENCY": "2",
        "GUNICORN_THREADS": "4",
        **extra,
    }


def printed_config(environment: dict[str, str]) -> dict[str, str]:
    """gunicorn's own view of gunicorn.conf.py (`--print-config`), setting name -> value."""
    result = subprocess.run(
        [str(BIN_DIR / "gunicorn"), "-c", "gunicorn.conf.py", "--print-config", "wsgi:app"],
        cwd=REPO_ROOT,
        env={**os.environ, **environment},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    settings = {}
    for line in result.stdout.splitlines():
        name, separator, value = line.partition("=")
        if separator:
            settings[name.strip()] = value.strip()
    return settings


def test_gunicorn_takes_every_setting_from_the_environment():
    config = printed_config(
        {
            "APP_ENV": "development",
            "PORT": "8123",
            "WEB_CONCURRENCY": "3",
            "GUNICORN_THREADS": "7",
            "GUNICORN_TIMEOUT": "45",
            "GRACEFUL_TIMEOUT": "20",
        }
    )
    assert config["bind"] == "['0.0.0.0:8123']"
    assert config["workers"] == "3"
    assert config["threads"] == "7"
    assert config["worker_class"] == "gthread"
    assert config["timeout"] == "45"
    assert config["graceful_timeout"] == "20"
    assert int(config["max_requests"]) > 0 and int(config["max_requests_jitter"]) > 0
    assert config["preload_app"] == "False"


def test_gunicorn_believes_forwarded_headers_only_when_a_proxy_is_trusted():
    assert printed_config({"APP_ENV": "development"})["forwarded_allow_ips"] == "[]"
    behind_nginx = printed_config({"APP_ENV": "development", "TRUSTED_PROXIES": "1"})
    assert behind_nginx["forwarded_allow_ips"] == "['127.0.0.1', '::1']"
    in_a_container_network = printed_config(
        {"APP_ENV": "development", "TRUSTED_PROXIES": "1", "FORWARDED_ALLOW_IPS": "10.0.0.0/8"}
    )
    assert in_a_container_network["forwarded_allow_ips"] == "['10.0.0.0/8']"


def workers_when(server: RunningServer, accept: Any, what: str) -> set[int]:
    """The master's worker pids, once `accept(pids)` holds (polled with a deadline)."""

    def accepted() -> set[int] | None:
        pids = child_pids(server.process.pid)
        return pids if accept(pids) else None

    return wait_for(accepted, what)


def worker_generation(server: RunningServer, count: int) -> set[int]:
    return workers_when(server, lambda pids: len(pids) == count, f"{count} workers")


def test_two_hup_reloads_under_continuous_load_fail_no_request(tmp_path):
    environment = served_environment(tmp_path)
    with gunicorn_server(
        environment, tmp_path / "gunicorn.log", ready_path=READY_PATH, app_module=TEST_APP
    ) as server:
        generations = [worker_generation(server, 2)]
        with SteadyLoad(server.base_url + "/_test/whoami", threads=4) as load:
            load.wait_for_more(100)
            for _reload in range(2):
                before = generations[-1]
                server.process.send_signal(signal.SIGHUP)
                # The old workers drain and exit; two new ones take over the same socket.
                replaced = workers_when(
                    server,
                    lambda pids, before=before: len(pids) == 2 and not pids & before,
                    "the old workers to be replaced",
                )
                generations.append(replaced)
                # Load keeps flowing through the new generation before the next reload.
                wait_for(
                    lambda replaced=replaced: all(load.pids[pid] > 0 for pid in replaced),
                    "both new workers to serve requests",
                )
                load.wait_for_more(100)
        figures = {
            "requests": load.total,
            "failed": len(load.failures),
            "failures_sample": load.failures[:5],
            "worker_generations": [sorted(generation) for generation in generations],
            "requests_per_worker": {str(pid): count for pid, count in load.pids.items()},
        }
        write_artifact("deploy-hup-reload.json", figures)
    assert load.failures == [], figures
    assert len(generations) == 3
    assert server.logs().count("Hang up") == 2


def test_term_lets_in_flight_requests_finish_and_only_then_refuses_connections(tmp_path):
    environment = served_environment(tmp_path, GRACEFUL_TIMEOUT="20")
    in_flight = 4
    with gunicorn_server(
        environment, tmp_path / "gunicorn.log", ready_path=READY_PATH, app_module=TEST_APP
    ) as server:
        port = int(server.base_url.rsplit(":", 1)[1])
        results: list[Any] = []

        def slow_request() -> None:
            try:
                response = requests.get(server.base_url + "/_test/slow?seconds=3", timeout=30)
                results.append((response.status_code, response.json()["data"]["slept_s"]))
            except Exception as error:
                results.append(error)

        clients = [threading.Thread(target=slow_request) for _ in range(in_flight)]
        for client in clients:
            client.start()
        wait_for(
            lambda: server.logs().count("slow request started") == in_flight,
            "the slow requests to reach the app",
        )
        server.process.send_signal(signal.SIGTERM)

        # While they run, the workers still hold the listening socket: not refused yet.
        with socket.create_connection(("127.0.0.1", port), timeout=2):
            pass
        assert not results, "a slow request finished before the connection probe"

        for client in clients:
            client.join(timeout=30)
        assert results == [(200, 3.0)] * in_flight
        # Then the master exits cleanly and the port refuses new connections.
        assert server.process.wait(timeout=30) == 0

        def refused() -> bool:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
            except ConnectionRefusedError:
                return True
            return False

        wait_for(refused, "the port to refuse connections", deadline_s=10)
    assert "Shutting down: Master" in server.logs()


def test_a_worker_killed_with_sigkill_is_replaced_and_the_service_keeps_answering(tmp_path):
    environment = served_environment(tmp_path)
    with gunicorn_server(
        environment, tmp_path / "gunicorn.log", ready_path=READY_PATH, app_module=TEST_APP
    ) as server:
        workers = worker_generation(server, 2)
        victim = min(workers)
        os.kill(victim, signal.SIGKILL)

        # The survivor answers at once; the master forks a replacement for the victim.
        for _ in range(20):
            response = requests.get(server.base_url + "/_test/whoami", timeout=10)
            assert response.status_code == 200
        replacement = (
            workers_when(
                server, lambda pids: len(pids) == 2 and victim not in pids, "a replacement worker"
            )
            - workers
        )
        served_by = wait_for(
            lambda: (
                requests.get(server.base_url + "/_test/whoami", timeout=10).json()["data"]["pid"]
                in replacement
            ),
            "the replacement worker to serve a request",
        )
        assert served_by
        assert server.process.poll() is None, "the master must survive a worker's crash"
    assert f"Worker (pid:{victim}) was sent SIGKILL" in server.logs()


def test_a_preloaded_app_never_shares_a_database_connection_across_the_fork(tmp_path):
    with temporary_postgres_database() as database_url:
        environment = served_environment(
            tmp_path,
            DATABASE_URL=database_url,
            GUNICORN_CMD_ARGS="--preload",
            TEST_QUERY_AT_IMPORT="1",
        )
        with gunicorn_server(
            environment, tmp_path / "gunicorn.log", ready_path=READY_PATH, app_module=TEST_APP
        ) as server:
            sessions: dict[int, set[int]] = {}

            def both_workers_seen() -> bool:
                data = requests.get(server.base_url + "/_test/database", timeout=10).json()["data"]
                sessions.setdefault(data["pid"], set()).add(data["backend_pid"])
                sessions_data.update(data)
                return len(sessions) == 2

            sessions_data: dict[str, Any] = {}
            wait_for(both_workers_seen, "both workers to query the database")
        master_session = sessions_data["import_backend_pid"]
        assert sessions_data["import_pid"] == server.process.pid, "the app was not preloaded"
        assert master_session is not None
        worker_sessions = [backend for backends in sessions.values() for backend in backends]
        # Each worker opened its own session; none reuses the master's socket.
        assert master_session not in worker_sessions
        assert len(set(worker_sessions)) == len(worker_sessions)


def test_the_master_freezes_its_objects_before_forking_so_workers_keep_them_shared():
    # gunicorn.conf.py's pre_fork hook: frozen objects are never scanned (and so never
    # written) by a worker's garbage collection, so their pages stay shared with the master.
    import gc

    from app.server import freeze_live_objects

    try:
        freeze_live_objects()
        assert gc.get_freeze_count() > 0
    finally:
        gc.unfreeze()
