"""`flask users create-admin --email E`: the password comes from stdin or a prompt, never argv."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.conftest import REPO_ROOT, STRONG_PASSWORD, login

pytestmark = pytest.mark.slow


def create_admin(database_url: str, *arguments: str, stdin: str) -> subprocess.CompletedProcess:
    environment = {**os.environ, "APP_ENV": "test", "DATABASE_URL": database_url}
    return subprocess.run(
        [sys.executable, "-m", "flask", "--app", "wsgi.py", "users", "create-admin", *arguments],
        cwd=REPO_ROOT,
        env=environment,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_create_admin_reads_the_password_from_stdin_and_the_admin_can_log_in(
    database_url, make_app
):
    client = make_app().test_client()
    result = create_admin(
        database_url, "--email", " Boss@Example.com ", stdin=STRONG_PASSWORD + "\n"
    )
    assert result.returncode == 0, result.stderr
    assert "admin created: boss@example.com" in result.stdout
    assert STRONG_PASSWORD not in result.stdout + result.stderr
    tokens = login(client, "boss@example.com").get_json()["data"]
    users = client.get(
        "/api/v1/users", headers={"Authorization": f"Bearer {tokens['access_token']}"}
    )
    assert users.status_code == 200
    me = [u for u in users.get_json()["data"] if u["email"] == "boss@example.com"][0]
    assert (me["role"], me["email_verified"]) == ("admin", True)


def test_create_admin_applies_the_password_policy_and_refuses_duplicates(database_url, make_app):
    make_app()  # its teardown empties the tables afterwards
    weak = create_admin(database_url, "--email", "weak@example.com", stdin="password\n")
    assert weak.returncode != 0 and "too common" in weak.stderr
    assert (
        create_admin(database_url, "--email", "twice@example.com", stdin=STRONG_PASSWORD).returncode
        == 0
    )
    again = create_admin(database_url, "--email", "twice@example.com", stdin=STRONG_PASSWORD)
    assert again.returncode != 0 and "already exists" in again.stderr


def test_there_is_no_password_option_and_an_empty_stdin_is_refused(database_url, make_app):
    make_app()
    with_option = create_admin(
        database_url, "--email", "a@example.com", "--password", "x", stdin=""
    )
    assert with_option.returncode != 0 and "No such option" in with_option.stderr
    empty = create_admin(database_url, "--email", "a@example.com", stdin="")
    assert empty.returncode != 0 and "no password" in empty.stderr
