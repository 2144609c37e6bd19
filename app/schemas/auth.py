"""Authentication schemas."""

from __future__ import annotations

from marshmallow import Schema, fields

from app.schemas.fields import EmailAddress, Password, SafeString

# Same cap as app.services.tokens.MAX_TOKEN_LENGTH: a longer string is not one of our tokens.
TOKEN_MAX_LENGTH = 4096


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
    refresh_token = SafeString(required=True, max_length=TOKEN_MAX_LENGTH)


class OneTimeTokenSchema(Schema):
    token = SafeString(
        required=True, max_length=512, metadata={"description": "The token from the email."}
    )


class PasswordResetRequestSchema(Schema):
    # A malformed address is a 422 (that says nothing about accounts); any well-formed one
    # gets the same 202, registered or not.
    email = EmailAddress(required=True)


class PasswordResetConfirmSchema(Schema):
    token = SafeString(required=True, max_length=512)
    new_password = Password(required=True)


class MessageSchema(Schema):
    message = fields.String(required=True)


class LogoutSchema(Schema):
    refresh_token = SafeString(
        max_length=TOKEN_MAX_LENGTH,
        metadata={"description": "The session's refresh token; revoked with its whole family."},
    )
