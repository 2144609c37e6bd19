"""Shared fixtures: an app per database backend, each test isolated, logs captured."""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from flask_migrate import upgrade
from loguru import logger
from sqlalchemy import text

from app import create_app
from app.cli import init_migrations
from app.extensions import db
from app.logs import _json_line
from tests.services import redis_url_or_skip, temporary_postgres_database

# A real SMTP server (aiosmtpd) for the email tests: fixtures smtp_server, mailbox, smtp_client.
pytest_plugins = ("tests.mail",)

STRONG_PASSWORD = "correct horse battery staple"
BACKENDS = ("sqlite", "postgresql")
# Variables a developer's shell or CI might carry that would change what the tests see.
_ISOLATED_VARIABLES = (
    "APP_ENV",
    "DATABASE_URL",
    "REDIS_URL",
    "JWT_SECRET",
    "CORS_ORIGINS",
    "LOG_FORMAT",
    "LOG_LEVEL",
    "EMAIL_BACKEND",
    "SMTP_URL",
    "FRONTEND_URL",
    "METRICS_TOKEN",
    "TRUSTED_PROXIES",
    "RATE_LIMIT_DEFAULT",
    "RATE_LIMIT_AUTH",
    "RATE_LIMIT_LOGIN_FAILURES",
)
# The suite registers and logs in many times per test: limits are out of the way unless a
# test sets its own (tests/test_security_rate_limits.py does).
_GENEROUS_RATE_LIMITS = {
    "RATE_LIMIT_DEFAULT": "100000 per minute",
    "RATE_LIMIT_AUTH": "100000 per minute",
    "RATE_LIMIT_LOGIN_FAILURES": "100000 per minute",
}


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in _ISOLATED_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    # A developer's shell exporting traces must not make the whole suite trace.
    for name in [name for name in os.environ if name.startswith("OTEL_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("APP_ENV", "test")


def _migrated(database_url: str) -> str:
    app = create_app({"APP_ENV": "test", "DATABASE_URL": database_url})
    init_migrations(app)
    with app.app_context():
        upgrade()
        db.engine.dispose()
    return database_url


@pytest.fixture(scope="session")
def sqlite_database_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    path = tmp_path_factory.mktemp("sqlite") / "steadfast-test.db"
    return _migrated(f"sqlite:///{path}")


@pytest.fixture(scope="session")
def postgresql_database_url() -> Iterator[str]:
    with temporary_postgres_database() as url:
        yield _migrated(url)


@pytest.fixture(params=BACKENDS)
def database_url(request: pytest.FixtureRequest) -> str:
    return request.getfixturevalue(f"{request.param}_database_url")


@pytest.fixture
def make_app(database_url: str) -> Iterator[Callable[..., Flask]]:
    """Build apps on the test database; tables are emptied after the test."""
    apps: list[Flask] = []

    def build(**overrides: str) -> Flask:
        app = create_app(
            {"APP_ENV": "test", "DATABASE_URL": database_url, **_GENEROUS_RATE_LIMITS, **overrides}
        )
        apps.append(app)
        return app

    yield build
    for app in apps[:1]:
        with app.app_context():
            db.session.remove()
            for table in reversed(db.metadata.sorted_tables):
                db.session.execute(text(f"DELETE FROM {table.name}"))
            db.session.commit()
    for app in apps:
        with app.app_context():
            db.engine.dispose()


@pytest.fixture
def app(make_app: Callable[..., Flask]) -> Flask:
    return make_app()


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture
def app_context(app: Flask) -> Iterator[None]:
    with app.app_context():
        yield


@pytest.fixture
def redis_url() -> Iterator[str]:
    import redis

    url = redis_url_or_skip()
    client = redis.Redis.from_url(url)
    client.flushdb()
    yield url
    client.flushdb()
    client.close()


@pytest.fixture
def log_records() -> Iterator[list[dict[str, Any]]]:
    """Every log record written during the test, as the JSON object the JSON sink writes."""
    records: list[dict[str, Any]] = []
    sink_id = logger.add(
        lambda message: records.append(json.loads(_json_line(message.record))),
        level="DEBUG",
        format="{message}",
    )
    yield records
    logger.remove(sink_id)


def unique_email(prefix: str = "user") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}@example.com"


def register(
    client: FlaskClient, email: str | None = None, password: str = STRONG_PASSWORD, **extra: Any
) -> Any:
    return client.post(
        "/api/v1/users", json={"email": email or unique_email(), "password": password, **extra}
    )


def login(client: FlaskClient, email: str, password: str = STRONG_PASSWORD) -> Any:
    return client.post("/api/v1/auth/login", json={"email": email, "password": password})


@pytest.fixture
def registered_user(client: FlaskClient) -> dict[str, Any]:
    """A user registered through the API, with a fresh token pair."""
    email = unique_email()
    created = register(client, email, name="Test User")
    assert created.status_code == 201, created.get_json()
    tokens = login(client, email).get_json()["data"]
    return {
        "email": email,
        "password": STRONG_PASSWORD,
        "id": created.get_json()["data"]["id"],
        **tokens,
    }


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def assert_error_envelope(response: Any, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.get_data(as_text=True)[:500]
    assert response.mimetype == "application/json"
    body = response.get_json()
    assert body["success"] is False
    assert body["status"] == "error"
    assert body["code"] == code
    assert isinstance(body["message"], str) and body["message"]
    assert body["request_id"] == response.headers["X-Request-ID"]
    return body


REPO_ROOT = Path(__file__).resolve().parent.parent
os.environ.setdefault("PYTHONDONTWRITEBYTECODE", "1")
