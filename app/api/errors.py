"""Documented error responses shared by the views (the body is always the error envelope)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from app.schemas.envelope import ErrorEnvelopeSchema

_DESCRIPTIONS = {
    400: "Malformed JSON or a repeated query parameter.",
    401: "Missing, invalid, expired or revoked credentials.",
    403: "Authenticated but not allowed, or the account is disabled.",
    404: "No such resource.",
    409: "Conflicts with existing data.",
    413: "The body is larger than MAX_CONTENT_LENGTH.",
    415: "The body is not application/json.",
    422: "The body or parameters failed validation.",
    429: "Rate limited; see Retry-After.",
    503: "A dependency is unavailable.",
}


def documents_errors(blueprint: Any, *statuses: int) -> Callable:
    """Declare the error statuses a view can return, for the OpenAPI document."""

    def decorate(view: Callable) -> Callable:
        for status in statuses:
            view = blueprint.alt_response(
                status, schema=ErrorEnvelopeSchema, description=_DESCRIPTIONS[status]
            )(view)
        return view

    return decorate
