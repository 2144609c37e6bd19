"""/api/v1/auth: tokens."""

from __future__ import annotations

from flask_smorest import Blueprint

from app.api.errors import documents_errors
from app.schemas.auth import LoginSchema, TokenPairSchema
from app.schemas.envelope import success_envelope
from app.services import auth as auth_service

blp = Blueprint("auth", __name__, url_prefix="/api/v1/auth", description="Authentication")


@blp.route("/login", methods=["POST"])
@blp.arguments(LoginSchema)
@blp.response(200, success_envelope(TokenPairSchema))
@documents_errors(blp, 400, 401, 403, 413, 415, 422, 429)
def login(credentials: dict) -> dict:
    """Exchange an email and password for an access and a refresh token."""
    return {"data": auth_service.login(credentials["email"], credentials["password"])}
