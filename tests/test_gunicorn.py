"""The deployment shape: a real gunicorn serving the app as `make run` does."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import requests

from app import malloc
from app.services import passwords
from tests.conftest import STRONG_PASSWORD, unique_email
from tests.deploy_support import child_pids
from tests.processes import gunicorn_server, migrated_sqlite_environment

pytestmark = pytest.mark.slow


def test_gunicorn_serves_register_login_and_me_on_sqlite(tmp_path):
    environment = migrated_sqlite_environment(tmp_path, WEB_CONCURRENCY="2")
    with gunicorn_server(environment, tmp_path / "gunicorn.log") as server:
        email = unique_email()
        created = requests.post(
            f"{server.base_url}/api/v1/users",
            json={"email": email, "password": STRONG_PASSWORD},
            timeout=10,
        )
        assert created.status_code == 201, created.text
        assert created.headers["Location"].startswith("/api/v1/users/")
        tokens = requests.post(
            f"{server.base_url}/api/v1/auth/login",
            json={"email": email, "password": STRONG_PASSWORD},
            timeout=10,
        ).json()["data"]
        me = requests.get(
            f"{server.base_url}/api/v1/users/me",
            headers={"Authorization": f"Bearer {tokens['access_token']}"},
            timeout=10,
        )
        assert me.status_code == 200 and me.json()["data"]["email"] == email
        missing = requests.get(f"{server.base_url}/nowhere", timeout=10)
        assert missing.status_code == 404 and missing.json()["code"] == "not_found"
    logs = server.logs()
    assert "Booting worker" in logs
    # Two workers and no Redis: the master says what that costs before serving.
    assert "WEB_CONCURRENCY=2 without REDIS_URL" in logs
    assert STRONG_PASSWORD not in logs and tokens["access_token"] not in logs


def test_make_run_serves_one_worker_without_redis_so_a_logout_holds(tmp_path):
    # As `make run` starts: neither WEB_CONCURRENCY nor REDIS_URL.
    environment = migrated_sqlite_environment(tmp_path)
    for name in ("WEB_CONCURRENCY", "REDIS_URL"):
        environment.pop(name, None)
    with gunicorn_server(environment, tmp_path / "gunicorn.log") as server:
        assert len(child_pids(server.process.pid)) == 1
        credentials = {"email": unique_email(), "password": STRONG_PASSWORD}
        created = requests.post(f"{server.base_url}/api/v1/users", json=credentials, timeout=10)
        assert created.status_code == 201, created.text
        tokens = requests.post(
            f"{server.base_url}/api/v1/auth/login", json=credentials, timeout=10
        ).json()["data"]
        bearer_header = {"Authorization": f"Bearer {tokens['access_token']}"}
        logout = requests.post(
            f"{server.base_url}/api/v1/auth/logout", headers=bearer_header, timeout=10
        )
        assert logout.status_code == 204, logout.text
        # Each on a new connection: with two workers some of these reached the other one,
        # which had not heard of the logout, and answered 200.
        statuses = [
            requests.get(f"{server.base_url}/api/v1/users/me", headers=bearer_header, timeout=10)
            for _ in range(10)
        ]
        assert [me.status_code for me in statuses] == [401] * 10
    assert "without REDIS_URL" not in server.logs()


def _rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError(f"no VmRSS for {pid}")


@pytest.mark.skipif(not malloc._glibc(), reason="glibc's malloc_trim and mallopt only")
def test_a_worker_returns_the_argon2_buffer_to_the_os_once_logins_pause(tmp_path):
    environment = migrated_sqlite_environment(tmp_path, WEB_CONCURRENCY="1")
    with gunicorn_server(environment, tmp_path / "gunicorn.log") as server:
        (worker,) = child_pids(server.process.pid)
        email = unique_email()
        credentials = {"email": email, "password": STRONG_PASSWORD}
        created = requests.post(f"{server.base_url}/api/v1/users", json=credentials, timeout=10)
        assert created.status_code == 201, created.text
        for _ in range(3):
            login = requests.post(
                f"{server.base_url}/api/v1/auth/login", json=credentials, timeout=10
            )
            assert login.status_code == 200, login.text
        busy = _rss_mib(worker)
        time.sleep(passwords.IDLE_RELEASE_S + 1.5)
        idle = _rss_mib(worker)
        assert busy - idle > 15, f"worker RSS {busy:.1f} -> {idle:.1f} MiB after the pause"
        login = requests.post(f"{server.base_url}/api/v1/auth/login", json=credentials, timeout=10)
        assert login.status_code == 200, login.text
