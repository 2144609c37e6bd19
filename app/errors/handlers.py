"""One set of error handlers: AppError, werkzeug HTTP errors and bugs become the envelope."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flask import Flask, Response, g, jsonify, request
from loguru import logger
from sqlalchemy.exc import OperationalError as DatabaseOperationalError
from werkzeug.exceptions import HTTPException

from app.errors import AppError, ServiceUnavailableError

INTERNAL_ERROR_MESSAGE = "Something went wrong. Please try again later."

# Codes and client-facing messages for the werkzeug exceptions we let through.
_HTTP_ERRORS: dict[int, tuple[str, str]] = {
    400: ("bad_request", "The request is malformed."),
    401: ("unauthorized", "Authentication is required."),
    403: ("forbidden", "You are not allowed to do this."),
    404: ("not_found", "The requested URL was not found."),
    405: ("method_not_allowed", "The method is not allowed for this URL."),
    406: ("not_acceptable", "This endpoint only produces application/json."),
    409: ("conflict", "The request conflicts with the current state of the resource."),
    411: ("length_required", "A Content-Length header is required."),
    413: ("payload_too_large", "The request body is too large."),
    414: ("uri_too_long", "The request URL is too long."),
    415: ("unsupported_media_type", "The request body must be application/json."),
    422: ("validation_error", "The request is invalid."),
    429: ("rate_limited", "Too many requests. Please slow down."),
    431: ("request_header_fields_too_large", "The request headers are too large."),
    500: ("internal_error", INTERNAL_ERROR_MESSAGE),
    501: ("not_implemented", "The method is not implemented."),
    503: ("service_unavailable", ServiceUnavailableError.default_message),
}
# Headers of a werkzeug exception worth keeping (405 lists the allowed methods).
_KEPT_HEADERS = ("Allow", "Retry-After", "WWW-Authenticate")


def error_response(
    status: int,
    code: str,
    message: str,
    errors: Mapping[str, Any] | None = None,
    headers: Mapping[str, str] | None = None,
) -> Response:
    body: dict[str, Any] = {
        "success": False,
        "status": "error",
        "code": code,
        "message": message,
        "request_id": getattr(g, "request_id", None),
    }
    if errors:
        body["errors"] = errors
    response = jsonify(body)
    response.status_code = status
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


def flatten_validation_messages(messages: Any) -> dict[str, list[str]]:
    """webargs nests messages by location ({"json": {"email": [...]}}); clients want fields."""
    if not isinstance(messages, Mapping):
        return {"_schema": [str(messages)]}
    flat: dict[str, list[str]] = {}
    for by_field in messages.values():
        if not isinstance(by_field, Mapping):
            flat.setdefault("_schema", []).extend(_as_strings(by_field))
            continue
        for field_name, field_messages in by_field.items():
            flat.setdefault(str(field_name), []).extend(_as_strings(field_messages))
    return flat


def _as_strings(messages: Any) -> list[str]:
    if isinstance(messages, str):
        return [messages]
    if isinstance(messages, Mapping):
        # A nested schema or a list index: keep the path readable without internals.
        return [f"{key}: {text}" for key, value in messages.items() for text in _as_strings(value)]
    if isinstance(messages, (list, tuple)):
        return [text for item in messages for text in _as_strings(item)]
    return [str(messages)]


def _log_context(status: int, code: str) -> dict[str, Any]:
    return {
        "status": status,
        "code": code,
        "path": request.path,
        "method": request.method,
        "ip": request.remote_addr,
        "user_id": getattr(g, "user_id", None),
    }


def handle_app_error(error: AppError) -> Response:
    context = _log_context(error.status_code, error.code)
    if error.status_code >= 500 or not error.is_operational:
        logger.opt(exception=error).bind(**context).error(error.message)
    else:
        logger.bind(**context).info("request failed: {}", error.message)
    return error_response(error.status_code, error.code, error.message, error.errors, error.headers)


def handle_http_exception(error: HTTPException) -> Response:
    status = error.code or 500
    code, message = _HTTP_ERRORS.get(status, ("http_error", error.name))
    data = getattr(error, "data", None) or {}
    errors = None
    if status == 422 and "messages" in data:
        errors = flatten_validation_messages(data["messages"])
    elif status == 400 and "messages" in data:
        message = "The request body is not valid JSON."
    elif status == 429 and error.description:
        message = f"Too many requests: limit of {error.description}. Please slow down."
    headers = {name: value for name, value in error.get_headers() if name in _KEPT_HEADERS}
    headers.update(data.get("headers") or {})
    logger.bind(**_log_context(status, code)).info("request failed: {}", message)
    return error_response(status, code, message, errors, headers)


def handle_database_unavailable(error: DatabaseOperationalError) -> Response:
    # A lost or refused connection is an outage, not a bug: say so, with a 503.
    logger.opt(exception=error).bind(**_log_context(503, "service_unavailable")).error(
        "database unavailable"
    )
    unavailable = ServiceUnavailableError()
    return error_response(503, unavailable.code, unavailable.message, headers={"Retry-After": "5"})


def handle_unexpected_error(error: Exception) -> Response:
    logger.opt(exception=error).bind(**_log_context(500, "internal_error")).error(
        "unhandled exception: {}", type(error).__name__
    )
    return error_response(500, "internal_error", INTERNAL_ERROR_MESSAGE)


def register_error_handlers(app: Flask) -> None:
    app.register_error_handler(AppError, handle_app_error)
    app.register_error_handler(HTTPException, handle_http_exception)
    app.register_error_handler(DatabaseOperationalError, handle_database_unavailable)
    app.register_error_handler(Exception, handle_unexpected_error)
