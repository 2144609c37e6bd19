"""Pooled PostgreSQL connections: checked on checkout without a round trip unless needed."""

from __future__ import annotations

import time
from collections.abc import Iterator

import psycopg
import pytest
from sqlalchemy import Engine, create_engine, text

from app import create_app
from app.extensions import db
from app.repositories import pool_checks
from tests.conftest import bearer, login, register, unique_email


def _psycopg_url(url: str) -> str:
    return url.replace("postgresql://", "postgresql+psycopg://", 1)


@pytest.fixture
def engine(postgresql_database_url: str) -> Iterator[Engine]:
    engine = create_engine(
        _psycopg_url(postgresql_database_url), pool_size=1, max_overflow=0, pool_pre_ping=False
    )
    pool_checks.check_connections_on_checkout(engine)
    yield engine
    engine.dispose()


@pytest.fixture
def pings(engine: Engine, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Each ping the checkout sends, counted."""
    sent: list[int] = []
    real_ping = engine.dialect.do_ping

    def counted_ping(dbapi_connection) -> bool:
        sent.append(1)
        return real_ping(dbapi_connection)

    monkeypatch.setattr(engine.dialect, "do_ping", counted_ping)
    return sent


def _backend_pid(engine: Engine) -> int:
    with engine.connect() as connection:
        return connection.execute(text("select pg_backend_pid()")).scalar_one()


def _terminate(postgresql_database_url: str, pid: int) -> None:
    with psycopg.connect(postgresql_database_url, autocommit=True) as admin:
        admin.execute("select pg_terminate_backend(%s)", (pid,))
    # The server's goodbye reaches the pooled connection's socket.
    time.sleep(0.2)


def test_a_connection_back_in_use_within_the_window_is_not_pinged(engine, pings):
    first = _backend_pid(engine)
    for _ in range(5):
        assert _backend_pid(engine) == first
    assert pings == []


def test_a_connection_idle_longer_than_the_window_is_pinged(engine, pings, monkeypatch):
    _backend_pid(engine)
    monkeypatch.setattr(pool_checks, "IDLE_PING_AFTER_S", 0.05)
    time.sleep(0.1)

    _backend_pid(engine)

    assert pings == [1]


def test_a_connection_the_server_ended_is_replaced_before_use(
    engine, pings, postgresql_database_url
):
    old_pid = _backend_pid(engine)
    _terminate(postgresql_database_url, old_pid)

    new_pid = _backend_pid(engine)

    assert new_pid != old_pid
    assert pings == [1]


def test_the_app_serves_on_after_its_pooled_connections_were_ended(
    postgresql_database_url, redis_url
):
    app = create_app(
        {
            "APP_ENV": "test",
            "DATABASE_URL": postgresql_database_url,
            "REDIS_URL": redis_url,
            "RATE_LIMIT_AUTH": "100000 per minute",
        }
    )
    client = app.test_client()
    email = unique_email("pool")
    register(client, email)
    token = login(client, email).get_json()["data"]["access_token"]
    assert client.get("/api/v1/users/me", headers=bearer(token)).status_code == 200
    with app.app_context():
        pids = [_backend_pid(db.engine)]
    for pid in pids:
        _terminate(postgresql_database_url, pid)

    # A restart of PostgreSQL ends every session the same way.
    statuses = [client.get("/api/v1/users/me", headers=bearer(token)).status_code for _ in range(3)]

    assert statuses == [200, 200, 200]
    with app.app_context():
        db.engine.dispose()
