"""User accounts: registration, look-up, and what users do to their own account."""

from __future__ import annotations

import uuid
from typing import Any

from loguru import logger

from app.errors import ConflictError, NotFoundError, UnauthorizedError
from app.models import User
from app.models.one_time_token import PASSWORD_RESET
from app.models.types import utc_now
from app.repositories import DuplicateError
from app.repositories import users as users_repository
from app.services import email as email_service
from app.services import one_time_tokens
from app.services.passwords import check_password_policy, hash_password, verify_password

EMAIL_TAKEN_MESSAGE = "An account with this email already exists."
WRONG_PASSWORD_MESSAGE = "The password is incorrect."
LAST_ADMIN_MESSAGE = "The last active admin cannot be demoted, disabled or deleted."


def normalise_email(email: str) -> str:
    return email.strip().lower()


def register(email: str, password: str, name: str | None = None) -> User:
    user = _add_user(email, password, name)
    email_service.queue_welcome(user)
    return user


def create_admin(email: str, password: str, name: str | None = None) -> User:
    """An operator-made admin (`flask users create-admin`): verified, no welcome email."""
    return _add_user(email, password, name, role="admin", email_verified=True)


def _add_user(email: str, password: str, name: str | None, **fields: object) -> User:
    """Insert a new account: policy checked, password hashed, 409 if the email is taken."""
    normalised_email = normalise_email(email)
    check_password_policy(password, normalised_email)
    # No look-up first: the unique index decides (race-safe), and a SELECT before every
    # INSERT would cost each registration a round trip to spare the rare duplicate a hash.
    user = User(
        email=normalised_email,
        password_hash=hash_password(password),
        name=(name or "").strip() or None,
        **fields,
    )
    try:
        users_repository.add(user)
    except DuplicateError as error:
        raise ConflictError(EMAIL_TAKEN_MESSAGE) from error
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


# "Not given" differs from null: `{"name": null}` clears the name, `{}` leaves it.
UNSET: Any = object()


def update_profile(user: User, name: str | None = UNSET, email: str | None = None) -> User:
    """Change the name and/or email; a new email is unverified until its link is followed."""
    if name is not UNSET:
        user.name = (name or "").strip() or None
    email_changed = False
    if email is not None and normalise_email(email) != user.email:
        user.email = normalise_email(email)
        user.email_verified = False
        email_changed = True
    try:
        users_repository.commit()
    except DuplicateError as error:
        # The unique index decides, so two users racing for one address get one 409.
        raise ConflictError(EMAIL_TAKEN_MESSAGE) from error
    if email_changed:
        logger.bind(user_id=str(user.id)).info("email changed: verification sent")
        email_service.queue_email_verification(user)
    return user


def set_password(user: User, new_password: str) -> None:
    """Store the new hash and revoke every session (tokens issued before now are refused)."""
    user.password_hash = hash_password(new_password)
    user.password_changed_at = utc_now()
    one_time_tokens.retire_all(user.id, PASSWORD_RESET)
    users_repository.commit()
    email_service.queue_password_changed(user)


def _check_password(user: User, password: str) -> None:
    if not verify_password(user.password_hash, password):
        raise UnauthorizedError(WRONG_PASSWORD_MESSAGE, headers=None)


def change_password(user: User, current_password: str, new_password: str) -> None:
    _check_password(user, current_password)
    check_password_policy(new_password, user.email, field="new_password")
    set_password(user, new_password)
    logger.bind(user_id=str(user.id)).info("password changed: every session revoked")


def delete_own_account(user: User, password: str) -> None:
    _check_password(user, password)
    delete_user(user)


def removes_an_active_admin(
    user: User, role: str | None = None, active: bool | None = None
) -> bool:
    if user.role != "admin" or not user.is_active:
        return False
    return (role is not None and role != "admin") or active is False


def guard_last_admin(user: User) -> None:
    """409 unless another active admin remains; the admins stay locked until commit."""
    admin_ids = users_repository.lock_active_admin_ids()
    if user.id in admin_ids and len(admin_ids) <= 1:
        users_repository.rollback()
        raise ConflictError(LAST_ADMIN_MESSAGE)


def delete_user(user: User) -> None:
    """Delete the row (hard delete; its one-time tokens go with it).

    Every JWT of the account dies with it: `user_for_claims` finds no user for its `sub`.
    """
    if removes_an_active_admin(user, active=False):
        guard_last_admin(user)
    user_id = str(user.id)
    users_repository.delete(user)
    logger.bind(user_id=user_id).info("account deleted")
