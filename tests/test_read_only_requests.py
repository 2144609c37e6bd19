"""Authenticated GET requests read outside a transaction; writes keep theirs."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager

from flask import Flask
from sqlalchemy import event

from app import DATABASE_WAIT_TIMEOUT_S
from app.extensions import AUTOCOMMIT_BIND, db
from app.models import User
from app.repositories import users as users_repository
from app.repositories.connections import BoundedWaitConnection
from tests.conftest import bearer
from tests.sql_statements import Statement, has_autocommit_engine, statements_sent, verbs


@contextmanager
def app_statements(app: Flask, texts: list[str] | None = None) -> Iterator[list[Statement]]:
    with app.app_context(), statements_sent(texts) as sent:
        yield sent


def test_get_me_is_one_select_outside_a_transaction(app, client, registered_user):
    # No BEGIN before it and no ROLLBACK after it: two PostgreSQL round trips fewer.
    with app_statements(app) as sent:
        response = client.get("/api/v1/users/me", headers=bearer(registered_user["access_token"]))

    assert response.status_code == 200
    assert verbs(sent) == [("SELECT", True)]


def test_an_admin_listing_reads_outside_a_transaction_too(app, client, registered_user):
    with app.app_context():
        user = db.session.get(User, uuid.UUID(registered_user["id"]))
        user.role = "admin"
        db.session.commit()

    with app_statements(app) as sent:
        response = client.get("/api/v1/users", headers=bearer(registered_user["access_token"]))

    assert response.status_code == 200
    assert sent and all(statement.in_autocommit for statement in sent)


def test_a_write_after_authentication_keeps_its_transaction(app, client, registered_user):
    with app_statements(app) as sent:
        response = client.patch(
            "/api/v1/users/me",
            json={"name": "Renamed"},
            headers=bearer(registered_user["access_token"]),
        )

    assert response.status_code == 200
    assert ("UPDATE", False) in verbs(sent)
    assert not any(statement.in_autocommit for statement in sent)
    assert all(statement.bind is None for statement in sent)


def test_on_postgresql_reads_use_connections_opened_in_autocommit(app, client, registered_user):
    # Switching a pooled connection to autocommit and back for every request was 3.6 % of its
    # instructions (docs/performance.md, finding 38): reads take a connection from a pool of
    # connections opened in autocommit, and the transactional pool is not touched.
    with app.app_context():
        if not has_autocommit_engine():
            assert db.engine.dialect.name == "sqlite"
            return
        engines = dict(db.engines)
    checkouts: list[str | None] = []
    listeners = []
    for bind, engine in engines.items():

        def note(dbapi_connection, record, proxy, bind=bind):
            checkouts.append(bind)
            # Opened in autocommit; nobody set it per request (no execution option).
            assert dbapi_connection.autocommit is (bind == AUTOCOMMIT_BIND)

        event.listen(engine, "checkout", note)
        listeners.append((engine, note))
    try:
        for _ in range(3):
            response = client.get(
                "/api/v1/users/me", headers=bearer(registered_user["access_token"])
            )
            assert response.status_code == 200
    finally:
        for engine, note in listeners:
            event.remove(engine, "checkout", note)
    assert checkouts == [AUTOCOMMIT_BIND] * 3


def test_after_an_autocommitted_write_the_session_is_transactional_again(app, registered_user):
    user_id = uuid.UUID(registered_user["id"])
    with app.app_context(), statements_sent() as sent:
        autocommit_bind = AUTOCOMMIT_BIND if has_autocommit_engine() else None
        users_repository.read_outside_transaction()
        user = users_repository.find_by_id(user_id)
        user.name = "In autocommit"
        users_repository.commit()
        user = users_repository.find_by_id(user_id)
        user.name = "In a transaction"
        users_repository.commit()
        db.session.remove()
        assert users_repository.find_by_id(user_id).name == "In a transaction"
    first_update, second_update = [s for s in sent if s.verb == "UPDATE"]
    assert first_update == ("UPDATE", True, autocommit_bind)
    assert second_update == ("UPDATE", False, None)


def test_the_autocommit_engine_has_the_same_timeouts_and_pool_bounds(app):
    with app.app_context():
        if not has_autocommit_engine():
            return
        engines = dict(db.engines)
        settings_seen = []
        for engine in engines.values():
            with engine.connect() as connection:
                # The bounded waits of app/repositories/connections.py, on both.
                driver_connection = connection.connection.driver_connection
                assert isinstance(driver_connection, BoundedWaitConnection)
                assert driver_connection.wait_timeout_s == DATABASE_WAIT_TIMEOUT_S
                settings_seen.append(
                    tuple(
                        connection.exec_driver_sql(f"SHOW {name}").scalar()
                        for name in (
                            "statement_timeout",
                            "idle_in_transaction_session_timeout",
                            "application_name",
                        )
                    )
                )
    assert settings_seen[0] == settings_seen[1]
    assert settings_seen[0][0] == "5s"
    pools = [engine.pool for engine in engines.values()]
    assert {(pool.size(), pool._max_overflow, pool._timeout, pool._recycle) for pool in pools} == {
        (5, 5, 5, 1800)
    }


def test_an_authenticated_read_does_not_load_the_password_hash(app, client, registered_user):
    texts: list[str] = []
    with app_statements(app, texts):
        response = client.get("/api/v1/users/me", headers=bearer(registered_user["access_token"]))
    assert response.status_code == 200
    (select,) = [text for text in texts if text.lstrip().upper().startswith("SELECT")]
    assert "users.email" in select and "password_hash" not in select


def test_a_password_check_loads_the_hash_when_it_needs_it(app, client, registered_user):
    from tests.conftest import STRONG_PASSWORD

    headers = bearer(registered_user["access_token"])
    new_password = STRONG_PASSWORD + " and more"
    texts: list[str] = []
    with app_statements(app, texts):
        wrong = client.post(
            "/api/v1/users/me/password",
            json={"current_password": "not the password at all", "new_password": new_password},
            headers=headers,
        )
    assert wrong.status_code == 401
    assert [text for text in texts if "password_hash" in text and "SELECT" in text.upper()]

    changed = client.post(
        "/api/v1/users/me/password",
        json={"current_password": STRONG_PASSWORD, "new_password": new_password},
        headers=headers,
    )
    assert changed.status_code == 204
    login = client.post(
        "/api/v1/auth/login", json={"email": registered_user["email"], "password": new_password}
    )
    assert login.status_code == 200
