"""Secrets never leave the process in a span: an exporter wrapper that scrubs each batch.

The instrumentations already keep SQL parameters and Redis arguments out (statements are
recorded with their placeholders, Redis commands as `SET ? ?`) and capture no headers unless
told to. This is the second line, in one place and off the request path (it runs on the
exporter's thread): whatever an instrumentation, a misconfiguration or an exception message
puts in a span is checked here before it is sent.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import unquote_plus

from opentelemetry.sdk.trace import Event, ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult
from opentelemetry.trace import Status

from app.logs import REDACTED, SENSITIVE_KEYS, redact_text

# Attributes that hold a URL or its query string (old and new HTTP semantic conventions).
_URL_ATTRIBUTES = frozenset({"http.target", "http.url", "url.query", "url.full"})
# Query parameters whose values are credentials wherever they appear.
_SENSITIVE_QUERY_KEYS = SENSITIVE_KEYS | {
    "code",
    "key",
    "api_key",
    "apikey",
    "signature",
    "sig",
    "jwt",
    "id_token",
    "auth",
}
# Captured headers arrive as http.request.header.<name> (a list of values).
_SENSITIVE_HEADER_NAMES = frozenset(
    {"authorization", "proxy-authorization", "cookie", "set-cookie", "x-api-key"}
)
# SQLAlchemy appends the bound values to its error messages; PostgreSQL quotes the values of a
# violated key. Both are SQL parameters.
_SQL_PARAMETER_PATTERNS = (
    (
        re.compile(r"\[parameters: .*\](?=\s*(\(Background on this error|\Z))", re.DOTALL),
        "[parameters: ?]",
    ),
    (re.compile(r"(Key \([^)]*\)=\().*?(\) )"), r"\1?\2"),
)


# A value PostgreSQL echoes in an error's first line: `invalid input syntax for type integer: "x"`.
_QUOTED_VALUE = re.compile(r':\s*"[^"]*"')


def scrub_database_error(description: str) -> str:
    """A database error's first line with any echoed value removed; the DETAIL lines that
    follow quote the row's values, so they are dropped (the logs keep the full error)."""
    first_line = description.strip().splitlines()[0] if description.strip() else ""
    return _QUOTED_VALUE.sub(': "?"', scrub_text(first_line))


def scrub_text(text: str) -> str:
    for pattern, replacement in _SQL_PARAMETER_PATTERNS:
        text = pattern.sub(replacement, text)
    return redact_text(text)


def scrub_query(query: str) -> str:
    """`a=1&token=x` -> `a=1&token=[REDACTED]`; other parameters are kept as they came."""
    parts = []
    for part in query.split("&"):
        key, separator, _ = part.partition("=")
        if unquote_plus(key).strip().lower() in _SENSITIVE_QUERY_KEYS:
            part = f"{key}={REDACTED}"
        parts.append(part)
    return "&".join(parts)


def _scrub_url(url: str) -> str:
    base, separator, query = url.partition("?")
    return base + separator + scrub_query(query) if separator else url


def _is_sensitive_key(key: str) -> bool:
    last = key.rsplit(".", 1)[-1].lower()
    return last in SENSITIVE_KEYS or last in _SENSITIVE_HEADER_NAMES


def scrub_attributes(attributes: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """A scrubbed copy, or None when nothing needed scrubbing (the common case)."""
    if not attributes:
        return None
    changed: dict[str, Any] = {}
    for key, value in attributes.items():
        if _is_sensitive_key(key):
            changed[key] = REDACTED
        elif key == "url.query" and isinstance(value, str):
            scrubbed = scrub_query(value)
            if scrubbed != value:
                changed[key] = scrubbed
        elif key in _URL_ATTRIBUTES and isinstance(value, str):
            scrubbed = _scrub_url(value)
            if scrubbed != value:
                changed[key] = scrubbed
        elif key.startswith("exception.") and isinstance(value, str):
            scrubbed = scrub_text(value)
            if scrubbed != value:
                changed[key] = scrubbed
    if not changed:
        return None
    return {**attributes, **changed}


def scrub_span(span: ReadableSpan) -> ReadableSpan:
    """The span itself when clean, else a copy with the secrets replaced."""
    attributes = scrub_attributes(span.attributes)
    events: list[Event] | None = None
    for index, event in enumerate(span.events):
        event_attributes = scrub_attributes(event.attributes)
        if event_attributes is not None:
            events = events if events is not None else list(span.events)
            events[index] = Event(event.name, event_attributes, event.timestamp)
    status = span.status
    if status.description:
        is_database_span = bool(span.attributes) and "db.system" in span.attributes
        scrub = scrub_database_error if is_database_span else scrub_text
        description = scrub(status.description)
        if description != status.description:
            status = Status(status.status_code, description)
    if attributes is None and events is None and status is span.status:
        return span
    return ReadableSpan(
        name=span.name,
        context=span.context,
        parent=span.parent,
        resource=span.resource,
        attributes=attributes if attributes is not None else span.attributes,
        events=events if events is not None else span.events,
        links=span.links,
        kind=span.kind,
        status=status,
        start_time=span.start_time,
        end_time=span.end_time,
        instrumentation_scope=span.instrumentation_scope,
    )


class ScrubbingSpanExporter(SpanExporter):
    """Wraps the real exporter; every span passes through `scrub_span` first."""

    def __init__(self, exporter: SpanExporter) -> None:
        self.exporter = exporter

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        return self.exporter.export([scrub_span(span) for span in spans])

    def shutdown(self) -> None:
        self.exporter.shutdown()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return self.exporter.force_flush(timeout_millis)
