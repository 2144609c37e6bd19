"""Authentication schemas."""

from __future__ import annotations

from marshmallow import Schema, fields

from app.schemas.fields import EmailAddress, Password, SafeString


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


class RefreshSchema(Schema):
    refresh_token = SafeString(required=True, max_length=4096)


class OneTimeTokenSchema(Schema):
    token = SafeString(
        required=True, max_length=512, metadata={"description": "The token from the email."}
    )


class PasswordResetRequestSchema(Schema):
    # No format check: whatever is typed gets the same 202 (no account enumeration).
    email = EmailAddress(required=True, check_format=False)


class PasswordResetConfirmSchema(Schema):
    token = SafeString(required=True, max_length=512)
    new_password = Password(required=True)


class MessageSchema(Schema):
    message = fields.String(required=True)
