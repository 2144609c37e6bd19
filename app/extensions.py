"""Extensions, created once here and bound to an app in create_app (the Flask pattern).

Flask-Migrate is not among them: it is bound only when `flask db` runs (app/cli.py).
"""

from __future__ import annotations

from typing import Any

from flask_smorest import Api as SmorestApi
from flask_sqlalchemy import SQLAlchemy
from flask_sqlalchemy.session import Session as FlaskSQLAlchemySession
from sqlalchemy import Connection, Engine, MetaData, event
from sqlalchemy.orm import DeclarativeBase, SessionTransaction

from app.schemas.envelope import ErrorEnvelopeSchema


class Api(SmorestApi):
    """flask-smorest without its own error handler: ours renders the SPEC envelope."""

    ERROR_SCHEMA = ErrorEnvelopeSchema

    def _register_error_handlers(self) -> None:
        return None


class Base(DeclarativeBase):
    # Named constraints keep Alembic migrations deterministic on every backend.
    metadata = MetaData(
        naming_convention={
            "ix": "ix_%(column_0_label)s",
            "uq": "uq_%(table_name)s_%(column_0_name)s",
            "ck": "ck_%(table_name)s_%(constraint_name)s",
            "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
            "pk": "pk_%(table_name)s",
        }
    )


# The bind (SQLALCHEMY_BINDS) of an engine whose connections are in autocommit from the moment
# they are opened: PostgreSQL only (app/__init__.py, `_binds`).
AUTOCOMMIT_BIND = "autocommit"


class AutocommitCapableSession(FlaskSQLAlchemySession):
    """Flask-SQLAlchemy's session, which can run one transaction's work in autocommit.

    `begin_in_autocommit` is for work that needs no transaction (a read-only request, a login's
    SELECT, a registration's INSERT). Where the app has the autocommit bind (PostgreSQL), its
    statements go to that engine, whose connections were put in autocommit once, when they
    were opened: switching a pooled connection to autocommit and back cost 3.6 % of the
    instructions of a `GET /users/me` (docs/performance.md, finding 38). Elsewhere (SQLite)
    the one connection switches, and back when it is returned. Once that transaction ends
    (commit, rollback, close), the session picks engines as usual again.
    """

    _autocommit_engine: Engine | None = None

    def begin_in_autocommit(self) -> None:
        engine = self._db.engines.get(AUTOCOMMIT_BIND)
        if engine is None:
            self.connection(execution_options={"isolation_level": "AUTOCOMMIT"})
            return
        self._autocommit_engine = engine
        try:
            self.connection()
        except BaseException:
            self._autocommit_engine = None
            raise

    def get_bind(
        self, mapper: Any = None, clause: Any = None, bind: Any = None, **kwargs: Any
    ) -> Engine | Connection:
        if bind is None and self._autocommit_engine is not None:
            return self._autocommit_engine
        return super().get_bind(mapper, clause, bind, **kwargs)


@event.listens_for(AutocommitCapableSession, "after_transaction_end")
def _pick_engines_as_usual(
    session: AutocommitCapableSession, transaction: SessionTransaction
) -> None:
    if transaction.parent is None:
        session._autocommit_engine = None


db = SQLAlchemy(model_class=Base, session_options={"class_": AutocommitCapableSession})
