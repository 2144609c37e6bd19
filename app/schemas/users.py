"""User schemas: registration in, the public user object out."""

from __future__ import annotations

from marshmallow import Schema, fields

from app.schemas.fields import EmailAddress, Password, SafeString
from app.services.passwords import MIN_LENGTH as MIN_PASSWORD_LENGTH


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
