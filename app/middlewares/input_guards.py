"""Refuse input the views should never see: non-JSON bodies, JSON that cannot be decoded
safely, and repeated query parameters."""

from __future__ import annotations

import json

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


def refuse_unreadable_body() -> None:
    """415 for a body that is not JSON; 400 for JSON Python's decoder chokes on in ways webargs
    does not catch.

    webargs turns JSONDecodeError into a 400 but lets other failures through as 500s: a
    nesting deeper than the recursion limit (RecursionError) and an integer literal longer
    than 4300 digits (ValueError, CVE-2020-10735). The body is read here, within
    MAX_CONTENT_LENGTH (werkzeug raises 413 above it), and cached for the view.
    """
    if not _has_body():
        return
    if not request.is_json:
        raise UnsupportedMediaTypeError()
    data = request.get_data(cache=True)
    if not data:
        return
    try:
        json.loads(data.decode("utf-8"))
    except (ValueError, RecursionError) as error:
        # UnicodeDecodeError and JSONDecodeError are ValueErrors too: one answer for all.
        raise BadRequestError("The request body is not valid JSON.") from error


def refuse_repeated_query_parameters() -> None:
    if not request.query_string:
        # Most requests have none: skip building the parsed MultiDict just to find that out.
        return
    # Every query parameter of this API is single-valued; `?role=a&role=b` is ambiguous
    # (frameworks disagree on which wins), so it is refused rather than guessed.
    repeated = sorted(key for key, values in request.args.lists() if len(values) > 1)
    if repeated:
        raise BadRequestError(
            "Query parameters may be given only once: " + ", ".join(repeated[:10]) + ".",
            errors={key: ["Given more than once."] for key in repeated[:10]},
        )


def guard_input() -> None:
    """All the guards, in one hook: a body-less request costs two comparisons."""
    if request.method in _BODY_METHODS:
        refuse_unreadable_body()
    refuse_repeated_query_parameters()


def init_input_guards(app: Flask) -> None:
    app.before_request(guard_input)
