"""PostgreSQL connections whose every wait on the server is bounded, even when nobody answers.

statement_timeout only helps when the server hears the query. When the network or a proxy
swallows it (a black hole), psycopg would wait forever and, with gthread workers, gunicorn's
timeout never fires because the worker's main loop keeps beating. So each wait after the
connection is made gets a deadline a little longer than the statement timeout; on expiry the
connection is closed (its protocol state is unknown) and an OperationalError is raised, which
SQLAlchemy treats as a disconnect and the error handlers turn into a 503.
"""

from __future__ import annotations

from typing import Any

import psycopg
from flask import Flask
from loguru import logger
from psycopg import errors as psycopg_errors
from sqlalchemy import Engine, event
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import scoped_session


class BoundedWaitConnection(psycopg.Connection):
    wait_timeout_s: float | None = None

    def wait(self, gen: Any, *args: Any, timeout: float | None = None, **kwargs: Any) -> Any:
        if timeout is None:
            timeout = self.wait_timeout_s
        try:
            return super().wait(gen, *args, timeout=timeout, **kwargs)
        # psycopg's own timeout signal; pinned psycopg, and tests/test_faults.py proves it.
        except psycopg_errors._WaitTimeout as error:
            self.pgconn.finish()
            raise psycopg.OperationalError(
                f"the database did not answer within {timeout} s; connection closed"
            ) from error


def bound_database_waits(engine: Engine, wait_timeout_s: float) -> None:
    """Make `engine` (PostgreSQL via psycopg 3) open BoundedWaitConnection connections."""
    if engine.dialect.driver != "psycopg":
        return

    @event.listens_for(engine, "do_connect")
    def _connect(dialect: Any, record: Any, cargs: tuple, cparams: dict) -> psycopg.Connection:
        connection = BoundedWaitConnection.connect(*cargs, **cparams)
        connection.wait_timeout_s = wait_timeout_s
        return connection


def release_sessions_quietly(app: Flask, session: scoped_session) -> None:
    """End each request's session without letting a dead connection turn the reply into a 500.

    The response is already built when the app context is torn down; if the database went away
    meanwhile, the closing ROLLBACK fails. SQLAlchemy has invalidated that connection by then,
    so a warning is all that is left to do. Registered after Flask-SQLAlchemy's own teardown,
    it runs first (teardowns run in reverse), which leaves that one nothing to do.
    """

    def remove_session(_error: BaseException | None) -> None:
        try:
            session.remove()
        except SQLAlchemyError as error:
            logger.warning("database session not closed cleanly: {}", type(error).__name__)

    app.teardown_appcontext(remove_session)
