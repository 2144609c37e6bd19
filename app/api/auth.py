"""/api/v1/auth: tokens."""

from __future__ import annotations

from flask_smorest import Blueprint

from app.api.errors import documents_errors
from app.middlewares.auth import BEARER_SECURITY, auth_required, current_access_token
from app.middlewares.rate_limits import auth_rate_limit, login_failure_limit
from app.schemas.auth import LoginSchema, LogoutSchema, TokenPairSchema
from app.schemas.envelope import success_envelope
from app.services import auth as auth_service

blp = Blueprint("auth", __name__, url_prefix="/api/v1/auth", description="Authentication")


@blp.route("/login", methods=["POST"])
@blp.arguments(LoginSchema)
@blp.response(200, success_envelope(TokenPairSchema))
@documents_errors(blp, 400, 401, 403, 413, 415, 422, 429)
@auth_rate_limit
@login_failure_limit
def login(credentials: dict) -> dict:
    """Exchange an email and password for an access and a refresh token."""
    return {"data": auth_service.login(credentials["email"], credentials["password"])}


@blp.route("/logout", methods=["POST"])
@blp.doc(security=BEARER_SECURITY)
@blp.arguments(LogoutSchema, required=False)
@blp.response(204, description="The access token and the given refresh token are revoked.")
@documents_errors(blp, 400, 401, 403, 413, 415, 422, 429)
@auth_required
def logout(payload: dict) -> None:
    """Revoke the presented access token and, if given, the refresh token of the session."""
    auth_service.logout(current_access_token(), payload.get("refresh_token"))
