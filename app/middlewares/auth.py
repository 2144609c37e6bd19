"""Bearer authentication for views: the token is checked by the auth service."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import wraps
from typing import Any, TypeVar

from flask import Flask, g, request

from app.errors import AppError, ForbiddenError, UnauthorizedError
from app.middlewares import rate_limit_storage
from app.middlewares.rate_limits import LIMITED_PATH_PREFIX
from app.models import User
from app.services import auth as auth_service
from app.services.tokens import CheckedToken, TokenClaims

View = TypeVar("View", bound=Callable[..., Any])
BEARER_SECURITY = [{"bearerAuth": []}]
_SAFE_METHODS = frozenset({"GET", "HEAD"})


def _bearer_token() -> str:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise UnauthorizedError("A bearer token is required.")
    return token.strip()


@dataclass(frozen=True)
class _TokenReadAhead:
    token: str
    claims: TokenClaims
    revocation: rate_limit_storage.ReadAlong | None


def _read_ahead_token() -> None:
    """Check a bearer token before the rate limiter runs, so that its revocation check rides
    in the limiter's Redis script instead of a round trip of its own.

    Only where the limiter goes to Redis (under /api/). A token that fails here is left for
    the view's `auth_required` to refuse, with its usual error. The limiter's storage and the
    token store are both built on REDIS_URL, so the keys are read where the store writes them;
    when the limiter does not reach Redis, the store is asked as before.
    """
    if "Authorization" not in request.headers or not request.path.startswith(LIMITED_PATH_PREFIX):
        return
    try:
        token = _bearer_token()
        claims, keys = auth_service.verify_access_token(token)
    except AppError:
        return
    revocation = rate_limit_storage.read_along(keys) if keys else None
    g.token_read_ahead = _TokenReadAhead(token, claims, revocation)


def _checked_token() -> CheckedToken | None:
    # `tokens.decode` uses it only for the very token it is given.
    ahead: _TokenReadAhead | None = g.get("token_read_ahead")
    if ahead is None:
        return None
    present = ahead.revocation.present if ahead.revocation is not None else None
    return CheckedToken(ahead.token, ahead.claims, None if present is None else present > 0)


def init_token_read_ahead(app: Flask) -> None:
    """Register the read-ahead; call before `init_rate_limits`, whose hook must run after it."""
    app.before_request(_read_ahead_token)


def auth_required(view: View | None = None, *, role: str | None = None) -> Any:
    """Require a valid access token (and `role`, if given); the user is `current_user()`.

    On GET and HEAD the request's reads run outside a transaction (two PostgreSQL round trips
    fewer): a view behind this decorator must never write on a safe method.
    """

    def decorate(func: View) -> View:
        @wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            token = _bearer_token()
            # GET and HEAD are safe methods (RFC 9110): their views only read.
            user = auth_service.authenticate(
                token, read_only=request.method in _SAFE_METHODS, checked=_checked_token()
            )
            g.current_user = user
            g.user_id = str(user.id)
            if role is not None and user.role != role:
                raise ForbiddenError(f"This action needs the {role} role.")
            return func(*args, **kwargs)

        # Read by the OpenAPI completeness test (tests/test_openapi_document.py): a view that
        # needs a token must say so in the document. functools.wraps carries it outwards.
        wrapper.requires_bearer_token = True  # type: ignore[attr-defined]
        wrapper.required_role = role  # type: ignore[attr-defined]
        return wrapper  # type: ignore[return-value]

    return decorate(view) if view is not None else decorate


def current_user() -> User:
    return g.current_user


def current_access_token() -> str:
    """The bearer token `auth_required` accepted for this request (logout revokes it)."""
    return _bearer_token()
