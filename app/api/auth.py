"""/api/v1/auth: tokens, email verification and password reset."""

from __future__ import annotations

from flask_smorest import Blueprint

from app.api.errors import documents_errors
from app.middlewares.auth import BEARER_SECURITY, auth_required, current_access_token
from app.middlewares.rate_limits import auth_rate_limit, login_failure_limit
from app.schemas.auth import (
    LoginSchema,
    LogoutSchema,
    MessageSchema,
    OneTimeTokenSchema,
    PasswordResetConfirmSchema,
    PasswordResetRequestSchema,
    RefreshSchema,
    TokenPairSchema,
)
from app.schemas.envelope import success_envelope
from app.services import account_tokens as account_tokens_service
from app.services import auth as auth_service

blp = Blueprint("auth", __name__, url_prefix="/api/v1/auth", description="Authentication")

RESET_REQUESTED_MESSAGE = (
    "If an account exists for this email, a password reset link is on its way."
)


@blp.route("/login", methods=["POST"])
@blp.doc(summary="Exchange an email and password for an access and a refresh token.")
@blp.arguments(LoginSchema)
@blp.response(200, success_envelope(TokenPairSchema))
@documents_errors(blp, 400, 401, 403, 413, 415, 422, 429)
@auth_rate_limit
@login_failure_limit
def login(credentials: dict) -> dict:
    return {"data": auth_service.login(credentials["email"], credentials["password"])}


@blp.route("/logout", methods=["POST"])
@blp.doc(
    summary="Revoke the presented access token and, if given, the refresh token of the session.",
    security=BEARER_SECURITY,
)
@blp.arguments(LogoutSchema, required=False)
@blp.response(204, description="The access token and the given refresh token are revoked.")
@documents_errors(blp, 400, 401, 403, 413, 415, 422, 429)
@auth_required
def logout(payload: dict) -> None:
    auth_service.logout(current_access_token(), payload.get("refresh_token"))


@blp.route("/refresh", methods=["POST"])
@blp.doc(
    summary="Spend a refresh token for a new pair; reusing a spent one revokes its whole family."
)
@blp.arguments(RefreshSchema)
@blp.response(200, success_envelope(TokenPairSchema))
@documents_errors(blp, 400, 401, 403, 413, 415, 422, 429, 503)
def refresh(payload: dict) -> dict:
    return {"data": auth_service.refresh(payload["refresh_token"])}


@blp.route("/verify-email", methods=["POST"])
@blp.doc(summary="Confirm the email address with the single-use token from the welcome email.")
@blp.arguments(OneTimeTokenSchema)
@blp.response(204, description="The email address is verified.")
@documents_errors(blp, 400, 401, 413, 415, 422, 429)
def verify_email(payload: dict) -> None:
    account_tokens_service.verify_email(payload["token"])


@blp.route("/password-reset", methods=["POST"])
@blp.doc(summary="Email a single-use reset link (valid 1 h) if the account exists; always 202.")
@blp.arguments(PasswordResetRequestSchema)
@blp.response(202, success_envelope(MessageSchema), description="Accepted, whatever the email.")
@documents_errors(blp, 400, 413, 415, 422, 429)
@auth_rate_limit
def request_password_reset(payload: dict) -> dict:
    account_tokens_service.request_password_reset(payload["email"])
    return {"data": {"message": RESET_REQUESTED_MESSAGE}}


@blp.route("/password-reset/confirm", methods=["POST"])
@blp.doc(summary="Set a new password with the emailed token; every existing session is revoked.")
@blp.arguments(PasswordResetConfirmSchema)
@blp.response(204, description="The password is changed and every session revoked.")
@documents_errors(blp, 400, 401, 403, 413, 415, 422, 429)
@auth_rate_limit
def confirm_password_reset(payload: dict) -> None:
    account_tokens_service.reset_password(payload["token"], payload["new_password"])
