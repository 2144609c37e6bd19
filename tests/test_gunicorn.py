"""The deployment shape: a real gunicorn serving the app as `make run` does."""

from __future__ import annotations

import pytest
import requests

from tests.conftest import STRONG_PASSWORD, unique_email
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
