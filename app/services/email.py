"""The emails the service sends: queued as jobs by the other services, built and sent here."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

from loguru import logger

from app.email.delivery import deliver
from app.email.messages import render
from app.email.queue import dispatch
from app.models import User
from app.models.one_time_token import PASSWORD_RESET, VERIFY_EMAIL
from app.repositories import users as users_repository
from app.services import one_time_tokens
from app.state import settings

API_PREFIX = "/api/v1"


# Called by the services, in the request: they only queue the job.


def queue_welcome(user: User) -> None:
    dispatch("welcome", user_id=str(user.id))


def queue_email_verification(user: User) -> None:
    dispatch("verify_email", user_id=str(user.id))


def queue_password_reset(normalised_email: str) -> None:
    dispatch("password_reset", email=normalised_email)


def queue_password_changed(user: User) -> None:
    dispatch("password_changed", user_id=str(user.id))


# The jobs, run by the RQ worker (or inline without Redis). A DeliveryError propagates so
# that RQ retries the job.


def _token_context(token: str, page: str, endpoint: str, purpose: str) -> dict[str, Any]:
    base = settings().frontend_url
    return {
        "token": token,
        "link": f"{base}/{page}?token={token}" if base else None,
        "endpoint": f"{API_PREFIX}{endpoint}",
        "expires_in": one_time_tokens.lifetime_text(purpose),
    }


def _user(user_id: str) -> User | None:
    user = users_repository.find_by_id(uuid.UUID(user_id))
    if user is None:
        logger.bind(user_id=user_id).info("email skipped: the account no longer exists")
    return user


def send_verification(user_id: str, template: str = "verify_email") -> None:
    user = _user(user_id)
    if user is None or user.email_verified:
        return
    token = one_time_tokens.issue(user.id, user.email, VERIFY_EMAIL)
    context = _token_context(token, "verify-email", "/auth/verify-email", VERIFY_EMAIL)
    deliver(render(template, user.email, carries_secret=True, name=user.name, **context))


def send_welcome(user_id: str) -> None:
    send_verification(user_id, template="welcome")


def send_password_reset(email: str) -> None:
    user = users_repository.find_by_email(email)
    if user is None or not user.is_active:
        # Not an error: this is what an enumeration attempt looks like. No address logged.
        logger.info("password reset requested for no active account: nothing sent")
        return
    token = one_time_tokens.issue(user.id, user.email, PASSWORD_RESET)
    context = _token_context(
        token, "reset-password", "/auth/password-reset/confirm", PASSWORD_RESET
    )
    deliver(render("password_reset", user.email, carries_secret=True, name=user.name, **context))


def send_password_changed(user_id: str) -> None:
    user = _user(user_id)
    if user is None:
        return
    changed_at = user.password_changed_at.strftime("%Y-%m-%d %H:%M UTC")
    deliver(render("password_changed", user.email, name=user.name, changed_at=changed_at))


EMAIL_JOBS: dict[str, Callable[..., None]] = {
    "welcome": send_welcome,
    "verify_email": send_verification,
    "password_reset": send_password_reset,
    "password_changed": send_password_changed,
}
