"""Bearer authentication for views: the token is checked by the auth service."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar

from flask import g, request

from app.errors import ForbiddenError, UnauthorizedError
from app.models import User
from app.services import auth as auth_service

View = TypeVar("View", bound=Callable[..., Any])
BEARER_SECURITY = [{"bearerAuth": []}]
_SAFE_METHODS = frozenset({"GET", "HEAD"})


def _bearer_token() -> str:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise UnauthorizedError("A bearer token is required.")
    return token.strip()


def auth_required(view: View | None = None, *, role: str | None = None) -> Any:
    """Require a valid access token (and `role`, if given); the user is `current_user()`.

    On GET and HEAD the request's reads run outside a transaction (two PostgreSQL round trips
    fewer): a view behind this decorator must never write on a safe method.
    """

    def decorate(func: View) -> View:
        @wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            # GET and HEAD are safe methods (RFC 9110): their views only read.
            user = auth_service.authenticate(
                _bearer_token(), read_only=request.method in _SAFE_METHODS
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
