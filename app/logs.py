"""Logging: loguru everywhere, JSON lines in deployment, secrets redacted before any sink."""

from __future__ import annotations

import json
import logging
import re
import sys
from collections.abc import Callable
from typing import Any

from flask import g, has_request_context
from loguru import logger

from app.config import Settings

REDACTED = "[REDACTED]"
SENSITIVE_KEYS = frozenset(
    {
        "password",
        "new_password",
        "current_password",
        "password_hash",
        "token",
        "access_token",
        "refresh_token",
        "authorization",
        "cookie",
        "set-cookie",
        "jwt_secret",
        "secret",
        "smtp_url",
    }
)
# JWTs, bearer credentials and password-ish key=value pairs that slip into free text.
_SECRET_PATTERNS = (
    (re.compile(r"eyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]*"), REDACTED),
    (re.compile(r"(?i)\b(bearer|basic)\s+[A-Za-z0-9._~+/=-]+"), r"\1 " + REDACTED),
    (
        re.compile(
            r"(?i)([\"']?(?:password|token|secret|authorization)[\"']?\s*[:=]\s*)"
            r"(\"[^\"]*\"|'[^']*'|[^\s,}&]+)"
        ),
        r"\1" + REDACTED,
    ),
    (re.compile(r"(?i)(://[^:/\s]+:)[^@/\s]+@"), r"\1" + REDACTED + "@"),
)
_CONTEXT_KEYS = ("request_id", "user_id", "trace_id", "span_id")
_STANDARD_RECORD_KEYS = ("ts", "level", "message", "logger")


# Every secret pattern above contains one of these words: one search rules most text out, where
# running the four substitutions on every string of every record was half of a log line's cost.
_MAY_HOLD_SECRET = re.compile(r"eyJ|bearer|basic|password|token|secret|authorization|://", re.I)
# The same words for ASCII text once lower-cased: a case-insensitive search folds the case of
# every character it reads, four times the CPU of lower() and a plain search (finding 37).
# Other text keeps the search above, whose case folding also matches the odd non-ASCII letter
# ("ſ", "K") that lower() would leave alone.
_MAY_HOLD_SECRET_LOWERED = re.compile(r"eyj|bearer|basic|password|token|secret|authorization|://")


def _may_hold_secret(text: str) -> bool:
    if text.isascii():
        return _MAY_HOLD_SECRET_LOWERED.search(text.lower()) is not None
    return _MAY_HOLD_SECRET.search(text) is not None


def redact_text(text: str) -> str:
    if not _may_hold_secret(text):
        return text
    for pattern, replacement in _SECRET_PATTERNS:
        text = pattern.sub(replacement, text)
    return text


def redact_value(key: str, value: Any) -> Any:
    if key.lower() in SENSITIVE_KEYS:
        return REDACTED
    if isinstance(value, str):
        return redact_text(value)
    if isinstance(value, dict):
        return {k: redact_value(str(k), v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [redact_value("", item) for item in value]
    return value


def _patch_record(record: dict[str, Any]) -> None:
    """Add the request's context and scrub secrets, before any sink sees the record."""
    extra = record["extra"]
    if "logger_name" in extra:
        record["name"] = extra.pop("logger_name")
    if has_request_context():
        # The proxy resolved once, and read with get(): getattr(g, key, None) on the proxy
        # costs a hop through it and, for each absent key, a caught AttributeError.
        request_globals = g._get_current_object()
        for key in _CONTEXT_KEYS:
            value = request_globals.get(key)
            if value is not None:
                extra.setdefault(key, value)
    span_ids = _current_span_ids()
    if span_ids is not None:
        extra.setdefault("trace_id", span_ids[0])
        extra.setdefault("span_id", span_ids[1])
    record["message"] = redact_text(record["message"])
    for key, value in list(extra.items()):
        extra[key] = redact_value(key, value)
    if record["exception"] is not None:
        extra["_stack"] = redact_text(_format_exception(record))


def _current_span_ids() -> tuple[str, str] | None:
    """Trace and span id of the span current where the line is written (request, database
    call or queued job), if any.

    A span exists only once OpenTelemetry is loaded, which happens only when tracing is
    configured: until then it is not imported here either (about 5 MiB per process).
    """
    trace = sys.modules.get("opentelemetry.trace")
    if trace is None:
        return None
    span_context = trace.get_current_span().get_span_context()
    if not span_context.is_valid:
        return None
    return trace.format_trace_id(span_context.trace_id), trace.format_span_id(span_context.span_id)


def _format_exception(record: dict[str, Any]) -> str:
    import traceback

    exc_type, exc_value, exc_tb = record["exception"]
    return "".join(traceback.format_exception(exc_type, exc_value, exc_tb))


def _json_line(record: dict[str, Any]) -> str:
    entry: dict[str, Any] = {
        "ts": record["time"].isoformat(),
        "level": record["level"].name,
        "message": record["message"],
        "logger": record["name"],
    }
    for key, value in record["extra"].items():
        if key == "_stack":
            entry["stack"] = value
        elif key not in _STANDARD_RECORD_KEYS:
            entry[key] = value
    return json.dumps(entry, default=str, ensure_ascii=False)


def _json_sink(message: Any) -> None:
    # Looked up on every call so that a test's captured stdout receives the line.
    sys.stdout.write(_json_line(message.record) + "\n")
    sys.stdout.flush()


def _pretty_format(record: dict[str, Any]) -> str:
    context = " ".join(
        f"{key}={{extra[{key}]}}" for key in record["extra"] if not key.startswith("_")
    )
    stack = "\n{extra[_stack]}" if "_stack" in record["extra"] else ""
    return (
        "<green>{time:HH:mm:ss.SSS}</green> <level>{level: <8}</level> "
        "<cyan>{name}</cyan> {message} <dim>" + context + "</dim>" + stack + "\n"
    )


class InterceptHandler(logging.Handler):
    """Route stdlib logging (gunicorn, werkzeug, SQLAlchemy, rq) into loguru."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            level: str | int = logger.level(record.levelname).name
        except ValueError:
            level = record.levelno
        logger.bind(logger_name=record.name).opt(exception=record.exc_info).log(
            level, record.getMessage()
        )


_installed_handler_ids: list[int] = []
_default_handler_removed = False


def configure_logging(settings: Settings, sink: Callable[[Any], None] | None = None) -> None:
    """(Re)install our sink; sinks added by others (tests, tools) are left in place."""
    global _default_handler_removed
    if not _default_handler_removed:
        logger.remove()
        _default_handler_removed = True
    while _installed_handler_ids:
        logger.remove(_installed_handler_ids.pop())
    logger.configure(patcher=_patch_record)
    if settings.log_format == "json":
        handler_id = logger.add(
            sink or _json_sink,
            level=settings.log_level,
            format="{message}",
            backtrace=False,
            diagnose=False,
            catch=True,
        )
    else:
        handler_id = logger.add(
            sink or sys.stderr,
            level=settings.log_level,
            format=_pretty_format,
            colorize=sink is None and sys.stderr.isatty(),
            backtrace=False,
            diagnose=False,
            catch=True,
        )
    _installed_handler_ids.append(handler_id)
    route_stdlib_logging(settings.log_level)


def route_stdlib_logging(level: str) -> None:
    handler = InterceptHandler()
    logging.basicConfig(handlers=[handler], level=logging.getLevelName(level), force=True)
    for name in ("gunicorn", "gunicorn.error", "werkzeug", "sqlalchemy", "alembic", "rq"):
        named = logging.getLogger(name)
        named.handlers = [handler]
        named.propagate = False
    # The access line is ours (one per request, with user and request id); gunicorn's
    # and werkzeug's would duplicate it.
    logging.getLogger("gunicorn.access").disabled = True
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    logging.getLogger("sqlalchemy.engine").setLevel(logging.WARNING)
