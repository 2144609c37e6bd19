"""Extensions, created once here and bound to an app in create_app (the Flask pattern).

Flask-Migrate is not among them: it is bound only when `flask db` runs (app/cli.py).
"""

from __future__ import annotations

from flask_smorest import Api as SmorestApi
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy import MetaData
from sqlalchemy.orm import DeclarativeBase

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


db = SQLAlchemy(model_class=Base)
