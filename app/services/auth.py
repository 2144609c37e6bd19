"""Authentication: login and the checks behind every authenticated request."""

from __future__ import annotations

import uuid

from loguru import logger

from app.errors import ForbiddenError, UnauthorizedError
from app.models import User
from app.repositories import users as users_repository
from app.services import passwords, tokens
from app.services.tokens import TokenClaims, TokenPair
from app.services.users import normalise_email

# One message for an unknown email and a wrong password: no account enumeration.
INVALID_CREDENTIALS_MESSAGE = "Invalid email or password."
DISABLED_MESSAGE = "This account is disabled."


def login(email: str, password: str) -> TokenPair:
    user = users_repository.find_by_email_outside_transaction(normalise_email(email))
    if user is None:
        passwords.burn_verification_time(password)
        raise UnauthorizedError(INVALID_CREDENTIALS_MESSAGE)
    if not passwords.verify_password(user.password_hash, password):
        raise UnauthorizedError(INVALID_CREDENTIALS_MESSAGE)
    if not user.is_active:
        raise ForbiddenError(DISABLED_MESSAGE)
    if passwords.needs_rehash(user.password_hash):
        user.password_hash = passwords.hash_password(password)
        users_repository.commit()
        logger.bind(user_id=str(user.id)).info("password rehashed with current parameters")
    return tokens.issue_pair(str(user.id))


def refresh(refresh_token: str) -> TokenPair:
    """Rotate: spend the refresh token, hand out a new pair in the same family.

    A refresh token presented twice means one copy was stolen (or replayed); we cannot tell
    which holder is legitimate, so the whole family dies and both must log in again
    (OAuth 2.0 Security BCP, refresh token rotation).
    """
    claims = tokens.decode(refresh_token, tokens.REFRESH)
    family_id = claims.family_id or ""
    if not tokens.claim_once(claims):
        tokens.revoke_family(claims)
        logger.bind(user_id=claims.subject, token_family=family_id).warning(
            "refresh token reused: its family is revoked"
        )
        raise UnauthorizedError(tokens.INVALID_TOKEN_MESSAGE)
    user = user_for_claims(claims)
    return tokens.issue_pair(str(user.id), family_id)


def user_for_claims(claims: TokenClaims) -> User:
    """The live, active user a verified token speaks for, else 401/403."""
    try:
        user = users_repository.find_by_id(uuid.UUID(claims.subject))
    except ValueError as error:
        raise UnauthorizedError(tokens.INVALID_TOKEN_MESSAGE) from error
    if user is None:
        raise UnauthorizedError(tokens.INVALID_TOKEN_MESSAGE)
    # Tokens issued before the last password change are dead (SPEC: change password).
    if claims.issued_at < user.password_changed_at.timestamp() - 0.001:
        raise UnauthorizedError(tokens.INVALID_TOKEN_MESSAGE)
    if not user.is_active:
        raise ForbiddenError(DISABLED_MESSAGE)
    return user


def authenticate(
    access_token: str, *, read_only: bool = False, checked: tokens.CheckedToken | None = None
) -> User:
    """The user of a valid access token; `read_only` for a request that writes nothing.

    A read-only request's database work then runs outside a transaction
    (`users_repository.read_outside_transaction`): two PostgreSQL round trips fewer.
    `checked`: what `verify_access_token` found earlier in the same request.
    """
    claims = tokens.decode(access_token, tokens.ACCESS, checked)
    if read_only:
        users_repository.read_outside_transaction()
    return user_for_claims(claims)


def verify_access_token(access_token: str) -> tuple[TokenClaims, list[str] | None]:
    """An access token's claims (signature and expiry checked, not revocation), and the store
    keys whose existence would mean it is revoked (None when the store is not Redis)."""
    claims = tokens.verify(access_token, tokens.ACCESS)
    return claims, tokens.revocation_keys(claims)


def logout(access_token: str, refresh_token: str | None = None) -> None:
    """Revoke the access token until it expires and the session's refresh token family.

    The refresh token must belong to the same user: nobody ends someone else's session.
    It is checked before anything is revoked, so a refused logout changes nothing.
    """
    access = tokens.decode(access_token, tokens.ACCESS)
    refresh = None
    if refresh_token is not None:
        refresh = tokens.decode(refresh_token, tokens.REFRESH)
        if refresh.subject != access.subject:
            raise UnauthorizedError(tokens.INVALID_TOKEN_MESSAGE)
    tokens.revoke(access)
    if refresh is not None:
        tokens.revoke(refresh)
        tokens.revoke_family(refresh)
    logger.bind(user_id=access.subject).info("logged out")
