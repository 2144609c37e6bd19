"""`flask db upgrade` on empty databases, and no drift between models and migrations."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import sqlalchemy as sa

from tests.conftest import REPO_ROOT
from tests.services import temporary_postgres_database

pytestmark = pytest.mark.slow


def _flask(database_url: str, *arguments: str) -> subprocess.CompletedProcess:
    environment = {
        **os.environ,
        "APP_ENV": "test",
        "DATABASE_URL": database_url,
        "FLASK_APP": "wsgi.py",
    }
    return subprocess.run(
        [sys.executable, "-m", "flask", *arguments],
        cwd=REPO_ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
    )


def _assert_upgrade_then_no_drift(database_url: str) -> None:
    upgraded = _flask(database_url, "db", "upgrade")
    assert upgraded.returncode == 0, upgraded.stderr
    checked = _flask(database_url, "db", "check")
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "No new upgrade operations detected" in checked.stdout + checked.stderr
    engine = sa.create_engine(database_url.replace("postgresql://", "postgresql+psycopg://"))
    try:
        inspector = sa.inspect(engine)
        assert "users" in inspector.get_table_names()
        indexes = {ix["name"]: ix for ix in inspector.get_indexes("users")}
        assert indexes["ix_users_email"]["unique"]
    finally:
        engine.dispose()


def test_upgrade_on_an_empty_sqlite_file(tmp_path):
    _assert_upgrade_then_no_drift(f"sqlite:///{tmp_path / 'empty.db'}")


def test_upgrade_on_an_empty_postgresql_database():
    with temporary_postgres_database("steadfast_migrate") as url:
        _assert_upgrade_then_no_drift(url)


def test_downgrade_to_base_and_up_again(tmp_path):
    url = f"sqlite:///{tmp_path / 'roundtrip.db'}"
    for arguments in (("db", "upgrade"), ("db", "downgrade", "base"), ("db", "upgrade")):
        result = _flask(url, *arguments)
        assert result.returncode == 0, result.stderr


def test_serving_requests_never_imports_alembic(tmp_path):
    # alembic (with mako and pygments) is ~11 MiB of RSS in every process that imports it;
    # only `flask db` needs it, so the app a gunicorn worker builds must not load it.
    script = (
        "import sys\n"
        "from app import create_app\n"
        "client = create_app().test_client()\n"
        "assert client.get('/health/live').status_code == 200\n"
        "assert client.get('/api/openapi.json').status_code == 200\n"
        "print(sorted(m for m in ('alembic', 'flask_migrate', 'mako') if m in sys.modules))\n"
    )
    environment = {
        **os.environ,
        "APP_ENV": "test",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'unused.db'}",
    }
    result = subprocess.run(
        [sys.executable, "-c", script],
        cwd=REPO_ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "[]"


def test_flask_db_is_flask_migrates_group_with_its_options_and_commands(tmp_path):
    url = f"sqlite:///{tmp_path / 'help.db'}"
    listed = _flask(url, "--help")
    assert listed.returncode == 0, listed.stderr
    assert "db " in listed.stdout and "Perform database migrations" in listed.stdout
    helped = _flask(url, "db", "--help")
    assert helped.returncode == 0, helped.stderr
    for expected in ("--directory", "--x-arg", "upgrade", "downgrade", "check", "current"):
        assert expected in helped.stdout
    # The group's own option is parsed by Flask-Migrate's group, as before.
    upgraded = _flask(url, "db", "--directory", str(REPO_ROOT / "migrations"), "upgrade")
    assert upgraded.returncode == 0, upgraded.stderr
    current = _flask(url, "db", "current")
    assert current.returncode == 0 and "(head)" in current.stdout + current.stderr
