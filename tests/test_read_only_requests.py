"""Authenticated GET requests read outside a transaction; writes keep theirs."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager

from flask import Flask
from sqlalchemy import event

from app.extensions import db
from app.models import User
from tests.conftest import bearer


@contextmanager
def statements_sent(app: Flask) -> Iterator[list[tuple[str, bool]]]:
    """Each SQL statement the app sends meanwhile, with whether it ran in autocommit."""
    sent: list[tuple[str, bool]] = []

    def record(connection, cursor, statement, parameters, context, executemany) -> None:
        in_autocommit = connection.get_execution_options().get("isolation_level") == "AUTOCOMMIT"
        sent.append((statement.split()[0].upper(), in_autocommit))

    with app.app_context():
        engine = db.engine
    event.listen(engine, "before_cursor_execute", record)
    try:
        yield sent
    finally:
        event.remove(engine, "before_cursor_execute", record)


def test_get_me_is_one_select_outside_a_transaction(app, client, registered_user):
    # No BEGIN before it and no ROLLBACK after it: two PostgreSQL round trips fewer.
    with statements_sent(app) as sent:
        response = client.get("/api/v1/users/me", headers=bearer(registered_user["access_token"]))

    assert response.status_code == 200
    assert sent == [("SELECT", True)]


def test_an_admin_listing_reads_outside_a_transaction_too(app, client, registered_user):
    with app.app_context():
        user = db.session.get(User, uuid.UUID(registered_user["id"]))
        user.role = "admin"
        db.session.commit()

    with statements_sent(app) as sent:
        response = client.get("/api/v1/users", headers=bearer(registered_user["access_token"]))

    assert response.status_code == 200
    assert sent and all(in_autocommit for _, in_autocommit in sent)


def test_a_write_after_authentication_keeps_its_transaction(app, client, registered_user):
    with statements_sent(app) as sent:
        response = client.patch(
            "/api/v1/users/me",
            json={"name": "Renamed"},
            headers=bearer(registered_user["access_token"]),
        )

    assert response.status_code == 200
    assert ("UPDATE", False) in sent
    assert not any(in_autocommit for _, in_autocommit in sent)
