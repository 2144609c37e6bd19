"""User queries."""

from __future__ import annotations

import uuid

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from app.extensions import db
from app.models import User
from app.repositories.errors import DuplicateError


def find_by_id(user_id: uuid.UUID) -> User | None:
    return db.session.get(User, user_id)


def find_by_email(normalised_email: str) -> User | None:
    return db.session.execute(
        select(User).where(User.email == normalised_email)
    ).scalar_one_or_none()


def add(user: User) -> User:
    """Insert and commit; DuplicateError when the unique email index refuses it."""
    db.session.add(user)
    commit()
    return user


def commit() -> None:
    try:
        db.session.commit()
    except IntegrityError as error:
        db.session.rollback()
        raise DuplicateError(str(error.orig.__class__.__name__)) from error
