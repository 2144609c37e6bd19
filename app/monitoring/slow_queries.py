"""Query timing on an engine: every statement feeds the latency histogram, slow ones are logged.

The statement text is logged (it holds placeholders, never values); the parameters are not,
because they carry emails, password hashes and token ids.
"""

from __future__ import annotations

import re
import time
import weakref
from typing import Any

from loguru import logger
from sqlalchemy import event
from sqlalchemy.engine import Engine

from app.monitoring import metrics

_STARTED_KEY = "steadfast_query_started"
_MAX_LOGGED_STATEMENT = 1000
_WHITESPACE = re.compile(r"\s+")
_slow_query_ms: weakref.WeakKeyDictionary[Engine, int] = weakref.WeakKeyDictionary()


def _operation(statement: str) -> str:
    first = statement.lstrip().split(None, 1)
    return first[0].upper()[:16] if first else "UNKNOWN"


def _before(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
    conn.info.setdefault(_STARTED_KEY, []).append(time.perf_counter())


def _after(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
    started = conn.info.get(_STARTED_KEY)
    if not started:
        return
    duration_s = time.perf_counter() - started.pop()
    metrics.observe_query(_operation(statement), duration_s)
    threshold_ms = _slow_query_ms.get(conn.engine)
    duration_ms = duration_s * 1000
    if threshold_ms is not None and duration_ms > threshold_ms:
        logger.bind(
            slow_query=True,
            duration_ms=round(duration_ms, 1),
            threshold_ms=threshold_ms,
            statement=_WHITESPACE.sub(" ", statement).strip()[:_MAX_LOGGED_STATEMENT],
        ).warning("slow query: {} ms over {} ms", round(duration_ms, 1), threshold_ms)


def _failed(context: Any) -> None:
    # A failed statement never reaches after_cursor_execute: drop its start time.
    connection = context.connection
    started = connection.info.get(_STARTED_KEY) if connection is not None else None
    if started:
        started.pop()


def instrument_engine(engine: Engine, slow_query_ms: int) -> None:
    """Time every statement of `engine`; log those over `slow_query_ms`. Idempotent."""
    _slow_query_ms[engine] = slow_query_ms
    if event.contains(engine, "before_cursor_execute", _before):
        return
    event.listen(engine, "before_cursor_execute", _before)
    event.listen(engine, "after_cursor_execute", _after)
    event.listen(engine, "handle_error", _failed)
