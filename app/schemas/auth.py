"""Authentication schemas."""

from __future__ import annotations

from marshmallow import Schema, fields

from app.schemas.fields import EmailAddress, Password


class LoginSchema(Schema):
    # No format check: a malformed email simply matches no account (same 401).
    email = EmailAddress(required=True, check_format=False)
    password = Password(required=True)


class TokenPairSchema(Schema):
    access_token = fields.String(required=True)
    refresh_token = fields.String(required=True)
    token_type = fields.String(required=True, metadata={"example": "Bearer"})
    expires_in = fields.Integer(
        required=True, metadata={"description": "Access token lifetime, s."}
    )
