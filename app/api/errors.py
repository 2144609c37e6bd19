"""Documented error responses shared by the views (the body is always the error envelope).

Each status is one response component of the OpenAPI document, referenced by every view that
can answer it. A view used to carry its own copy: flask-smorest deep-copies a view's whole doc,
schema instances included, at every decorator, so eight error statuses per view cost start-up
time and memory that grew with the square of their number (docs/performance.md).
"""

from __future__ import annotations

from collections.abc import Callable
from http import HTTPStatus
from typing import Any

from apispec import APISpec

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


def error_response_name(status: int) -> str:
    """The component's name: the status phrase in CamelCase (`TooManyRequests`)."""
    return "".join(word.capitalize() for word in HTTPStatus(status).phrase.split())


def register_error_responses(spec: APISpec) -> None:
    """Add one response component per documented error status (only the used ones appear)."""
    for status, description in _DESCRIPTIONS.items():
        spec.components.response(
            error_response_name(status),
            {
                "description": description,
                "content": {"application/json": {"schema": ErrorEnvelopeSchema}},
            },
            lazy=True,
        )


def documents_errors(blueprint: Any, *statuses: int) -> Callable:
    """Declare the error statuses a view can return, for the OpenAPI document."""
    unknown = set(statuses) - set(_DESCRIPTIONS)
    if unknown:
        raise ValueError(f"no documented error response for {sorted(unknown)}")

    def decorate(view: Callable) -> Callable:
        for status in statuses:
            view = blueprint.alt_response(status, response=error_response_name(status))(view)
        return view

    return decorate
