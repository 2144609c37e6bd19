"""JWT access and refresh tokens: HS256 only, typed, revocable by jti."""

from __future__ import annotations

import math
import time
import uuid
from dataclasses import dataclass
from typing import Any

import jwt

from app.errors import UnauthorizedError
from app.state import app_state, settings

ALGORITHM = "HS256"
ACCESS = "access"
REFRESH = "refresh"
REQUIRED_CLAIMS = ("sub", "jti", "iat", "exp", "type")
# A bearer credential larger than this is not one of ours; refuse before parsing it.
MAX_TOKEN_LENGTH = 4096
INVALID_TOKEN_MESSAGE = "The token is invalid or has expired."


@dataclass(frozen=True)
class TokenPair:
    access_token: str
    refresh_token: str
    expires_in: int
    token_type: str = "Bearer"


@dataclass(frozen=True)
class TokenClaims:
    subject: str
    jti: str
    issued_at: float
    expires_at: int
    token_type: str
    family_id: str | None

    @property
    def remaining_ttl_s(self) -> int:
        return max(1, math.ceil(self.expires_at - time.time()))


def _now_ms_precision() -> float:
    # Millisecond `iat`, so a token issued just after a password change is not mistaken
    # for one issued before it within the same second.
    return math.floor(time.time() * 1000) / 1000


def _encode(subject: str, token_type: str, ttl_s: int, extra: dict[str, Any]) -> str:
    issued_at = _now_ms_precision()
    claims = {
        "sub": subject,
        "jti": uuid.uuid4().hex,
        "iat": issued_at,
        "exp": int(issued_at) + ttl_s,
        "type": token_type,
        **extra,
    }
    return jwt.encode(claims, settings().jwt_secret, algorithm=ALGORITHM)


def issue_pair(user_id: str, family_id: str | None = None) -> TokenPair:
    """A new access token and a refresh token belonging to `family_id` (a new family if None).

    Both carry the family, so revoking a family (refresh-token reuse) also kills the access
    tokens handed out with it, not only the refresh tokens.
    """
    config = settings()
    family = {"fam": family_id or uuid.uuid4().hex}
    return TokenPair(
        access_token=_encode(user_id, ACCESS, config.access_token_ttl_s, family),
        refresh_token=_encode(user_id, REFRESH, config.refresh_token_ttl_s, family),
        expires_in=config.access_token_ttl_s,
    )


@dataclass(frozen=True)
class CheckedToken:
    """A token `verify` accepted earlier in the request and, if another round trip already
    brought the answer, whether it is revoked (None: not known, ask the token store)."""

    token: str
    claims: TokenClaims
    revoked: bool | None = None


def verify(token: str, expected_type: str) -> TokenClaims:
    """Signature, expiry and claims of a token of `expected_type`, not its revocation.

    An access token verified before in this app is answered from memory while it would still
    pass (app/services/verified_tokens.py); a refresh token is spent on its one use.
    """
    if not token or len(token) > MAX_TOKEN_LENGTH:
        raise UnauthorizedError(INVALID_TOKEN_MESSAGE)
    if expected_type != ACCESS:
        return _verified(token, expected_type)
    verified = app_state().verified_access_tokens
    claims = verified.get(token)
    if claims is None:
        claims = _verified(token, ACCESS)
        verified.remember(token, claims)
    return claims


def _verified(token: str, expected_type: str) -> TokenClaims:
    try:
        claims = jwt.decode(
            token,
            settings().jwt_secret,
            algorithms=[ALGORITHM],
            options={"require": list(REQUIRED_CLAIMS)},
        )
    except jwt.PyJWTError as error:
        raise UnauthorizedError(INVALID_TOKEN_MESSAGE) from error
    if claims.get("type") != expected_type:
        raise UnauthorizedError(INVALID_TOKEN_MESSAGE)
    if not isinstance(claims.get("sub"), str) or not isinstance(claims.get("jti"), str):
        raise UnauthorizedError(INVALID_TOKEN_MESSAGE)
    family_id = claims.get("fam")
    if family_id is not None and not isinstance(family_id, str):
        raise UnauthorizedError(INVALID_TOKEN_MESSAGE)
    if expected_type == REFRESH and family_id is None:
        raise UnauthorizedError(INVALID_TOKEN_MESSAGE)
    return TokenClaims(
        subject=claims["sub"],
        jti=claims["jti"],
        issued_at=float(claims["iat"]),
        expires_at=int(claims["exp"]),
        token_type=claims["type"],
        family_id=family_id,
    )


def revocation_keys(claims: TokenClaims) -> list[str] | None:
    """The store keys whose EXISTS count says whether `claims` is revoked (None in memory)."""
    return app_state().token_store.revocation_keys(claims.jti, claims.family_id)


def decode(token: str, expected_type: str, checked: CheckedToken | None = None) -> TokenClaims:
    """Verified, unrevoked claims of a token of `expected_type`, else UnauthorizedError.

    `checked`: what an earlier step of the request learnt of this same token; its signature
    is then not verified twice, nor its revocation asked twice.
    """
    if (
        checked is not None
        and checked.token == token
        and checked.claims.token_type == expected_type
    ):
        token_claims, revoked = checked.claims, checked.revoked
    else:
        token_claims, revoked = verify(token, expected_type), None
    if revoked is None:
        revoked = app_state().token_store.is_token_or_family_revoked(
            token_claims.jti, token_claims.family_id
        )
    if revoked:
        raise UnauthorizedError(INVALID_TOKEN_MESSAGE)
    return token_claims


def revoke(claims: TokenClaims) -> None:
    app_state().token_store.revoke(claims.jti, claims.remaining_ttl_s)


def claim_once(claims: TokenClaims) -> bool:
    """Mark a single-use token (a refresh token) as spent; True only for its first use."""
    return app_state().token_store.claim_once(claims.jti, claims.remaining_ttl_s)


def revoke_family(claims: TokenClaims) -> None:
    """Kill every token of the session `claims` belongs to (logout, reuse), access ones too."""
    if claims.family_id:
        # A later token of the family may outlive this one: hold the mark for a full lifetime.
        app_state().token_store.revoke_family(claims.family_id, settings().refresh_token_ttl_s)
