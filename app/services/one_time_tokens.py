"""Single-use emailed tokens: 256 random bits out, only their sha256 stored, spent atomically."""

from __future__ import annotations

import hashlib
import secrets
import uuid
from datetime import timedelta

from app.errors import UnauthorizedError
from app.models import OneTimeToken
from app.models.one_time_token import PASSWORD_RESET, VERIFY_EMAIL
from app.models.types import utc_now
from app.repositories import one_time_tokens as tokens_repository

LIFETIMES = {VERIFY_EMAIL: timedelta(hours=48), PASSWORD_RESET: timedelta(hours=1)}
INVALID_MESSAGE = "The link is invalid, has expired or was already used."
_MAX_TOKEN_LENGTH = 128


def hash_token(raw_token: str) -> str:
    return hashlib.sha256(raw_token.encode("utf-8")).hexdigest()


def issue(user_id: uuid.UUID, email: str, purpose: str) -> str:
    """A new token for `purpose`; the user's older unused ones of that purpose stop working."""
    raw_token = secrets.token_urlsafe(32)
    now = utc_now()
    tokens_repository.retire_unused(user_id, purpose, now)
    tokens_repository.add(
        OneTimeToken(
            user_id=user_id,
            purpose=purpose,
            token_hash=hash_token(raw_token),
            email=email,
            expires_at=now + LIFETIMES[purpose],
        )
    )
    return raw_token


def spend(raw_token: str, purpose: str) -> OneTimeToken:
    """The token's row, now marked used; 401 if unknown, expired, used or of another purpose."""
    if not raw_token or len(raw_token) > _MAX_TOKEN_LENGTH:
        raise UnauthorizedError(INVALID_MESSAGE, headers=None)
    token = tokens_repository.spend(hash_token(raw_token), purpose, utc_now())
    if token is None:
        raise UnauthorizedError(INVALID_MESSAGE, headers=None)
    return token


def retire_all(user_id: uuid.UUID, purpose: str) -> None:
    """Outstanding tokens stop working (committed by the caller's transaction)."""
    tokens_repository.retire_unused(user_id, purpose, utc_now())


def lifetime_text(purpose: str) -> str:
    hours = int(LIFETIMES[purpose].total_seconds() // 3600)
    return "1 hour" if hours == 1 else f"{hours} hours"
