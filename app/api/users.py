"""/api/v1/users: registration and the caller's own account."""

from __future__ import annotations

from flask_smorest import Blueprint

from app.api.errors import documents_errors
from app.middlewares.auth import BEARER_SECURITY, auth_required, current_user
from app.middlewares.rate_limits import auth_rate_limit
from app.schemas.envelope import success_envelope
from app.schemas.users import (
    ChangePasswordSchema,
    DeleteMeSchema,
    RegisterSchema,
    UpdateMeSchema,
    UserSchema,
)
from app.services import users as users_service

blp = Blueprint("users", __name__, url_prefix="/api/v1/users", description="User accounts")


def user_location(user_id: object) -> str:
    return f"{blp.url_prefix}/{user_id}"


@blp.route("", methods=["POST"])
@blp.doc(summary="Register a new account.")
@blp.arguments(RegisterSchema)
@blp.response(201, success_envelope(UserSchema), description="The account was created.")
@documents_errors(blp, 400, 409, 413, 415, 422, 429)
@auth_rate_limit
def register(payload: dict) -> tuple:
    user = users_service.register(**payload)
    return {"data": user}, {"Location": user_location(user.id)}


@blp.route("/me", methods=["GET"])
@blp.doc(summary="The authenticated user.", security=BEARER_SECURITY)
@blp.response(200, success_envelope(UserSchema))
@documents_errors(blp, 401, 403)
@auth_required
def get_me() -> dict:
    return {"data": current_user()}


@blp.route("/me", methods=["PATCH"])
@blp.doc(
    summary="Change the name or email; a new email is unverified until its emailed link is used.",
    security=BEARER_SECURITY,
)
# Every field is optional, so an empty or missing body is a valid no-op change.
@blp.arguments(UpdateMeSchema, required=False)
@blp.response(200, success_envelope(UserSchema))
@documents_errors(blp, 400, 401, 403, 409, 413, 415, 422, 429)
@auth_required
def update_me(changes: dict) -> dict:
    return {"data": users_service.update_profile(current_user(), **changes)}


@blp.route("/me/password", methods=["POST"])
@blp.doc(
    summary="Change the password (the current one is required); every session is revoked.",
    security=BEARER_SECURITY,
)
@blp.arguments(ChangePasswordSchema)
@blp.response(204, description="Changed; every token issued before is now refused.")
@documents_errors(blp, 400, 401, 403, 413, 415, 422, 429)
@auth_required
def change_password(payload: dict) -> None:
    users_service.change_password(
        current_user(), payload["current_password"], payload["new_password"]
    )


@blp.route("/me", methods=["DELETE"])
@blp.doc(
    summary="Delete the account (the password is required); the row is removed.",
    security=BEARER_SECURITY,
)
@blp.arguments(DeleteMeSchema)
@blp.response(204, description="The account is deleted and its tokens are dead.")
@documents_errors(blp, 400, 401, 403, 409, 413, 415, 422, 429)
@auth_required
def delete_me(payload: dict) -> None:
    users_service.delete_own_account(current_user(), payload["password"])
