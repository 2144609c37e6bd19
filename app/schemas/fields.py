"""Fields shared by the request schemas: strings that refuse what the database would choke on."""

from __future__ import annotations

from typing import Any

from marshmallow import ValidationError, fields, validate


class SafeString(fields.String):
    """A string with a hard length cap and no NUL or control characters.

    PostgreSQL rejects NUL in text, and a 10 kB string should cost a 422, not a hash.
    """

    def __init__(self, *, max_length: int, strip: bool = True, multiline: bool = False, **kwargs):
        self.max_length = max_length
        self.strip = strip
        self.multiline = multiline
        kwargs.setdefault("validate", [])
        super().__init__(**kwargs)
        # The cap is enforced in _deserialize; this makes the OpenAPI document say so too.
        self.metadata.setdefault("maxLength", max_length)

    def _deserialize(self, value: Any, attr, data, **kwargs) -> str:
        text = super()._deserialize(value, attr, data, **kwargs)
        if self.strip:
            text = text.strip()
        if len(text) > self.max_length:
            raise ValidationError(f"Must be at most {self.max_length} characters long.")
        allowed = "\n\r\t" if self.multiline else ""
        if any((ord(ch) < 32 and ch not in allowed) or ord(ch) == 127 for ch in text):
            raise ValidationError("Must not contain control characters.")
        if any(0xD800 <= ord(ch) <= 0xDFFF for ch in text):
            # JSON may escape a lone surrogate ("\ud800"); it is not text and cannot be
            # encoded as UTF-8 for the database, argon2 or the logs.
            raise ValidationError("Must be valid Unicode text.")
        return text


class Password(SafeString):
    """Passwords are taken as typed (no stripping); the policy lives in the service."""

    def __init__(self, **kwargs):
        super().__init__(max_length=128, strip=False, **kwargs)
        self.metadata.setdefault("format", "password")


class EmailAddress(SafeString):
    """Trimmed and lower-cased before validation, so ' A@B.io ' is the same account as 'a@b.io'."""

    def __init__(self, *, check_format: bool = True, **kwargs):
        super().__init__(max_length=254, **kwargs)
        self.check_format = check_format
        self.metadata.setdefault("format", "email")

    def _deserialize(self, value: Any, attr, data, **kwargs) -> str:
        text = super()._deserialize(value, attr, data, **kwargs).lower()
        if self.check_format:
            validate.Email(error="Not a valid email address.")(text)
        return text


class StrictBoolean(fields.Boolean):
    """JSON `true`/`false` only: `0`, `"no"` or `"false"` for an account status is a bug."""

    def _deserialize(self, value: Any, attr, data, **kwargs) -> bool:
        if not isinstance(value, bool):
            raise ValidationError("Not a valid boolean: use true or false.")
        return value
