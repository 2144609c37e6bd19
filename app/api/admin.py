"""/api/v1/users for admins: list, inspect, change and delete any account."""

from __future__ import annotations

import uuid

from flask_smorest import Blueprint
from marshmallow import RAISE

from app.api.errors import documents_errors
from app.middlewares.auth import BEARER_SECURITY, auth_required
from app.schemas.envelope import page_envelope, success_envelope
from app.schemas.users import AdminUpdateUserSchema, UserListQuerySchema, UserSchema
from app.services import admin as admin_service
from app.services import users as users_service

blp = Blueprint("admin", __name__, url_prefix="/api/v1/users", description="Administration")


@blp.route("", methods=["GET"])
@blp.doc(
    summary="A page of users, filtered and sorted; `meta` has the totals.", security=BEARER_SECURITY
)
# Unknown query parameters are refused like unknown body fields: a typo must not be ignored.
@blp.arguments(UserListQuerySchema, location="query", unknown=RAISE)
@blp.response(200, page_envelope(UserSchema))
@documents_errors(blp, 400, 401, 403, 422, 429)
@auth_required(role="admin")
def list_users(query: dict) -> dict:
    page = admin_service.list_users(**query)
    return {"data": page.items, "meta": page.meta}


@blp.route("/<uuid:user_id>", methods=["GET"])
@blp.doc(summary="One user.", security=BEARER_SECURITY)
@blp.response(200, success_envelope(UserSchema))
@documents_errors(blp, 401, 403, 404, 429)
@auth_required(role="admin")
def get_user(user_id: uuid.UUID) -> dict:
    return {"data": users_service.get_user(user_id)}


@blp.route("/<uuid:user_id>", methods=["PATCH"])
@blp.doc(
    summary="Change a user's name, role or status; the last active admin stays an active admin.",
    security=BEARER_SECURITY,
)
@blp.arguments(AdminUpdateUserSchema, required=False)
@blp.response(200, success_envelope(UserSchema))
@documents_errors(blp, 400, 401, 403, 404, 409, 413, 415, 422, 429)
@auth_required(role="admin")
def update_user(changes: dict, user_id: uuid.UUID) -> dict:
    return {"data": admin_service.update_user(user_id, **changes)}


@blp.route("/<uuid:user_id>", methods=["DELETE"])
@blp.doc(
    summary="Delete a user; the last active admin cannot be deleted.", security=BEARER_SECURITY
)
@blp.response(204, description="The account is deleted (the row is removed).")
@documents_errors(blp, 401, 403, 404, 409, 429)
@auth_required(role="admin")
def delete_user(user_id: uuid.UUID) -> None:
    admin_service.delete_user(user_id)
