"""Refuse input the views should never see: non-JSON bodies and repeated query parameters."""

from __future__ import annotations

from flask import Flask, request

from app.errors import AppError, BadRequestError

_BODY_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


class UnsupportedMediaTypeError(AppError):
    status_code = 415
    code = "unsupported_media_type"
    default_message = "The request body must be application/json."


def _has_body() -> bool:
    return (
        bool(request.content_length)
        or "chunked" in request.headers.get("Transfer-Encoding", "").lower()
    )


def require_json_body() -> None:
    if request.method in _BODY_METHODS and _has_body() and not request.is_json:
        raise UnsupportedMediaTypeError()


def refuse_repeated_query_parameters() -> None:
    # Every query parameter of this API is single-valued; `?role=a&role=b` is ambiguous
    # (frameworks disagree on which wins), so it is refused rather than guessed.
    repeated = sorted(key for key, values in request.args.lists() if len(values) > 1)
    if repeated:
        raise BadRequestError(
            "Query parameters may be given only once: " + ", ".join(repeated[:10]) + ".",
            errors={key: ["Given more than once."] for key in repeated[:10]},
        )


def init_input_guards(app: Flask) -> None:
    app.before_request(require_json_body)
    app.before_request(refuse_repeated_query_parameters)
