"""The flows built on emailed one-time tokens: email verification and password reset."""

from __future__ import annotations

from loguru import logger

from app.errors import ForbiddenError, UnauthorizedError
from app.models.one_time_token import PASSWORD_RESET, VERIFY_EMAIL
from app.repositories import users as users_repository
from app.services import email as email_service
from app.services import one_time_tokens
from app.services.passwords import check_password_policy
from app.services.users import normalise_email, set_password


def verify_email(raw_token: str) -> None:
    token = one_time_tokens.spend(raw_token, VERIFY_EMAIL)
    user = users_repository.find_by_id(token.user_id)
    # The token proves control of the address it was sent to, not of a later one.
    if user is None or user.email != token.email:
        users_repository.commit()
        raise UnauthorizedError(one_time_tokens.INVALID_MESSAGE, headers=None)
    user.email_verified = True
    users_repository.commit()
    logger.bind(user_id=str(user.id)).info("email verified")


def request_password_reset(email: str) -> None:
    """Queue the reset email job; it finds the account (or not) away from this request.

    The request does the same work whether or not the account exists (one enqueue), so its
    answer and its timing say nothing about which addresses are registered.
    """
    email_service.queue_password_reset(normalise_email(email))


def reset_password(raw_token: str, new_password: str) -> None:
    token = one_time_tokens.spend(raw_token, PASSWORD_RESET)
    user = users_repository.find_by_id(token.user_id)
    if user is None:
        users_repository.commit()
        raise UnauthorizedError(one_time_tokens.INVALID_MESSAGE, headers=None)
    if not user.is_active:
        users_repository.commit()
        raise ForbiddenError("This account is disabled.")
    check_password_policy(new_password, user.email, field="new_password")
    set_password(user, new_password)
    logger.bind(user_id=str(user.id)).info("password reset: every session revoked")
