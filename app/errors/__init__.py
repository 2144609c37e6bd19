"""The AppError family: what services raise, mapped to the SPEC section 2 envelope."""

from __future__ import annotations

from collections.abc import Mapping, Sequence


class AppError(Exception):
    """An expected, operational failure with the HTTP status and code clients see."""

    status_code = 500
    code = "internal_error"
    default_message = "Something went wrong. Please try again later."

    def __init__(
        self,
        message: str | None = None,
        status_code: int | None = None,
        code: str | None = None,
        is_operational: bool = True,
        *,
        errors: Mapping[str, Sequence[str]] | None = None,
        headers: Mapping[str, str] | None = None,
    ):
        self.message = message or self.default_message
        if status_code is not None:
            self.status_code = status_code
        if code is not None:
            self.code = code
        self.is_operational = is_operational
        self.errors = dict(errors) if errors else None
        self.headers = dict(headers) if headers else {}
        super().__init__(self.message)


class BadRequestError(AppError):
    status_code = 400
    code = "bad_request"
    default_message = "The request is malformed."


class UnauthorizedError(AppError):
    status_code = 401
    code = "unauthorized"
    default_message = "Authentication is required."

    def __init__(self, message: str | None = None, **kwargs):
        kwargs.setdefault("headers", {"WWW-Authenticate": 'Bearer realm="api"'})
        super().__init__(message, **kwargs)


class ForbiddenError(AppError):
    status_code = 403
    code = "forbidden"
    default_message = "You are not allowed to do this."


class NotFoundError(AppError):
    status_code = 404
    code = "not_found"
    default_message = "The resource was not found."


class ConflictError(AppError):
    status_code = 409
    code = "conflict"
    default_message = "The request conflicts with the current state of the resource."


class ValidationError(AppError):
    status_code = 422
    code = "validation_error"
    default_message = "The request is invalid."


class RateLimitedError(AppError):
    status_code = 429
    code = "rate_limited"
    default_message = "Too many requests. Please slow down."


class ServiceUnavailableError(AppError):
    status_code = 503
    code = "service_unavailable"
    default_message = "The service is temporarily unavailable. Please try again later."
