"""Baseline 2: the least an authenticated read can do, with no middleware at all.

Flask + PyJWT HS256 decode + one SQLAlchemy select by primary key on the same PostgreSQL
database (Steadfast's `users` table) + a JSON response. `/api/v1/users/me` is compared with it.
"""

from __future__ import annotations

import os
import uuid
from datetime import datetime

import jwt
from flask import Flask, request
from sqlalchemy import Boolean, DateTime, String, Uuid, create_engine
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column


class Base(DeclarativeBase):
    pass


class User(Base):
    __tablename__ = "users"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    email: Mapped[str] = mapped_column(String(254))
    name: Mapped[str | None] = mapped_column(String(100))
    role: Mapped[str] = mapped_column(String(16))
    is_active: Mapped[bool] = mapped_column(Boolean)
    email_verified: Mapped[bool] = mapped_column(Boolean)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


def _psycopg_url(url: str) -> str:
    scheme, separator, rest = url.partition("://")
    return f"postgresql+psycopg{separator}{rest}" if scheme in ("postgres", "postgresql") else url


SECRET = os.environ["JWT_SECRET"]
# The same pool size as Steadfast's engine, and nothing more (no pre-ping, no timeouts).
engine = create_engine(_psycopg_url(os.environ["DATABASE_URL"]), pool_size=5, max_overflow=5)
app = Flask(__name__)
UNAUTHORIZED = ({"success": False, "code": "unauthorized"}, 401)


@app.get("/users/me")
def me() -> tuple[dict, int] | dict:
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer":
        return UNAUTHORIZED
    try:
        claims = jwt.decode(token, SECRET, algorithms=["HS256"])
        user_id = uuid.UUID(claims["sub"])
    except (jwt.PyJWTError, KeyError, ValueError):
        return UNAUTHORIZED
    with Session(engine) as session:
        user = session.get(User, user_id)
    if user is None:
        return UNAUTHORIZED
    return {
        "success": True,
        "data": {
            "id": str(user.id),
            "email": user.email,
            "name": user.name,
            "role": user.role,
            "is_active": user.is_active,
            "email_verified": user.email_verified,
            "created_at": user.created_at.isoformat(),
            "updated_at": user.updated_at.isoformat(),
        },
    }
