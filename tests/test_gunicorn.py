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
    assert STRONG_PASSWORD not in logs and tokens["access_token"] not in logs


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
