"""User schemas: registration, profile and admin input; the public user object out."""

from __future__ import annotations

from marshmallow import Schema, fields, validate

from app.models import ROLES
from app.schemas.fields import EmailAddress, Password, SafeString, StrictBoolean
from app.services.passwords import MIN_LENGTH as MIN_PASSWORD_LENGTH

SORTS = ("created_at", "-created_at", "email", "-email")


class UserSchema(Schema):
    """The user as clients see it: never a password, hash or token."""

    # required: every field is always in the reply, and the document should promise it.
    id = fields.UUID(dump_only=True, required=True)
    email = fields.String(dump_only=True, required=True)
    name = fields.String(dump_only=True, required=True, allow_none=True)
    role = fields.String(dump_only=True, required=True, metadata={"enum": ["user", "admin"]})
    is_active = fields.Boolean(dump_only=True, required=True)
    email_verified = fields.Boolean(dump_only=True, required=True)
    created_at = fields.DateTime(dump_only=True, required=True)
    updated_at = fields.DateTime(dump_only=True, required=True)


class RegisterSchema(Schema):
    email = EmailAddress(required=True)
    # The length rule is documented here; the rest of the policy (not the email, not a common
    # password) cannot be said in a schema and is enforced by the service.
    password = Password(required=True, metadata={"minLength": MIN_PASSWORD_LENGTH})
    name = SafeString(max_length=100, allow_none=True)


class UpdateMeSchema(Schema):
    name = SafeString(max_length=100, allow_none=True)
    email = EmailAddress()


class ChangePasswordSchema(Schema):
    current_password = Password(required=True)
    new_password = Password(required=True)


class DeleteMeSchema(Schema):
    password = Password(required=True)


class UserListQuerySchema(Schema):
    page = fields.Integer(load_default=1, validate=validate.Range(min=1, max=1_000_000))
    per_page = fields.Integer(load_default=20, validate=validate.Range(min=1, max=100))
    sort = fields.String(load_default="-created_at", validate=validate.OneOf(SORTS))
    q = SafeString(max_length=100, metadata={"description": "Substring of the email or name."})
    role = fields.String(validate=validate.OneOf(ROLES))
    is_active = fields.Boolean()


class AdminUpdateUserSchema(Schema):
    name = SafeString(max_length=100, allow_none=True)
    role = fields.String(validate=validate.OneOf(ROLES))
    is_active = StrictBoolean()
