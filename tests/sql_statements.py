"""What SQL the app sends, seen on every engine it has (transactional and autocommit)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import NamedTuple

from sqlalchemy import event

from app.extensions import AUTOCOMMIT_BIND, db


class Statement(NamedTuple):
    verb: str
    # Whether the connection was in autocommit: no transaction around the statement.
    in_autocommit: bool
    # The engine's bind: AUTOCOMMIT_BIND, or None for the default (transactional) engine.
    bind: str | None


def _in_autocommit(connection) -> bool:
    """Read off the driver's connection: an engine-level setting shows in no execution option."""
    driver_connection = connection.connection.driver_connection
    autocommit = getattr(driver_connection, "autocommit", None)
    if isinstance(autocommit, bool):  # psycopg
        return autocommit
    return driver_connection.isolation_level is None  # sqlite3 (Python 3.11)


def verbs(sent: list[Statement]) -> list[tuple[str, bool]]:
    return [(statement.verb, statement.in_autocommit) for statement in sent]


def has_autocommit_engine() -> bool:
    return AUTOCOMMIT_BIND in db.engines


@contextmanager
def statements_sent(texts: list[str] | None = None) -> Iterator[list[Statement]]:
    """Each statement sent meanwhile on any of the app's engines (call in an app context);
    their SQL is appended to `texts` too, when given."""
    sent: list[Statement] = []
    listeners = []
    for bind, engine in db.engines.items():

        def record(connection, cursor, statement, parameters, context, executemany, bind=bind):
            verb = statement.split()[0].upper()
            sent.append(Statement(verb, _in_autocommit(connection), bind))
            if texts is not None:
                texts.append(statement)

        event.listen(engine, "before_cursor_execute", record)
        listeners.append((engine, record))
    try:
        yield sent
    finally:
        for engine, record in listeners:
            event.remove(engine, "before_cursor_execute", record)
