"""Reading a gunicorn log written with LOG_FORMAT=json (plus any raw stderr lines)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

from tests.processes import RunningServer


def json_records(text: str) -> list[dict[str, Any]]:
    records = []
    for line in text.splitlines():
        if line.startswith("{"):
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError:
                continue
    return records


def wait_for_log(
    server: RunningServer,
    predicate: Callable[[dict[str, Any]], bool],
    deadline_s: float = 20.0,
) -> dict[str, Any]:
    """The first JSON log record matching `predicate`, polling the log with a deadline."""
    give_up_at = time.monotonic() + deadline_s
    while True:
        for record in json_records(server.logs()):
            if predicate(record):
                return record
        if time.monotonic() > give_up_at:
            raise AssertionError(f"no matching log record within {deadline_s} s")
        time.sleep(0.1)


def wait_for_text(server: RunningServer, needle: str, deadline_s: float = 20.0) -> str:
    give_up_at = time.monotonic() + deadline_s
    while True:
        text = server.logs()
        if needle in text:
            return text
        if time.monotonic() > give_up_at:
            raise AssertionError(f"{needle!r} not in the log within {deadline_s} s")
        time.sleep(0.1)
