"""User accounts: registration and look-up."""

from __future__ import annotations

import uuid

from app.errors import ConflictError, NotFoundError
from app.models import User
from app.repositories import DuplicateError
from app.repositories import users as users_repository
from app.services import email as email_service
from app.services.passwords import check_password_policy, hash_password

EMAIL_TAKEN_MESSAGE = "An account with this email already exists."


def normalise_email(email: str) -> str:
    return email.strip().lower()


def register(email: str, password: str, name: str | None = None) -> User:
    normalised_email = normalise_email(email)
    check_password_policy(password, normalised_email)
    # A cheap look-up spares the hash for the common duplicate; the unique index below
    # is what makes concurrent registrations safe.
    if users_repository.find_by_email(normalised_email) is not None:
        raise ConflictError(EMAIL_TAKEN_MESSAGE)
    user = User(
        email=normalised_email,
        password_hash=hash_password(password),
        name=(name or "").strip() or None,
    )
    try:
        users_repository.add(user)
    except DuplicateError as error:
        raise ConflictError(EMAIL_TAKEN_MESSAGE) from error
    email_service.send_welcome(user.email, user.name)
    return user


def get_user(user_id: str | uuid.UUID) -> User:
    try:
        key = user_id if isinstance(user_id, uuid.UUID) else uuid.UUID(str(user_id))
    except ValueError as error:
        raise NotFoundError("The user was not found.") from error
    user = users_repository.find_by_id(key)
    if user is None:
        raise NotFoundError("The user was not found.")
    return user
