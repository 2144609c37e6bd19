"""User schemas: registration in, the public user object out."""

from __future__ import annotations

from marshmallow import Schema, fields

from app.schemas.fields import EmailAddress, Password, SafeString


class UserSchema(Schema):
    """The user as clients see it: never a password, hash or token."""

    id = fields.UUID(dump_only=True)
    email = fields.String(dump_only=True)
    name = fields.String(dump_only=True, allow_none=True)
    role = fields.String(dump_only=True, metadata={"enum": ["user", "admin"]})
    is_active = fields.Boolean(dump_only=True)
    email_verified = fields.Boolean(dump_only=True)
    created_at = fields.DateTime(dump_only=True)
    updated_at = fields.DateTime(dump_only=True)


class RegisterSchema(Schema):
    email = EmailAddress(required=True)
    password = Password(required=True)
    name = SafeString(max_length=100, allow_none=True)
