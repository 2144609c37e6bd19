"""Dependency probes with a hard deadline: a hung database or Redis costs at most the timeout.

Driver timeouts alone are not enough: libpq will not time out a connect below 2 s, and a
server that accepts a connection and never answers can stall a statement far longer. Each
probe runs in a daemon thread and the caller waits at most `timeout_s` for it. While a probe
of a dependency is still stuck, the next health check reports it down at once instead of
piling up another thread, so a hung dependency costs at most one thread per process.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import text
from sqlalchemy.engine import Engine


@dataclass
class ProbeResult:
    status: str  # "ok" or "down"
    latency_ms: float
    error: str | None = None

    def as_dict(self) -> dict[str, Any]:
        body: dict[str, Any] = {"status": self.status, "latency_ms": self.latency_ms}
        if self.error:
            body["error"] = self.error
        return body


class _Probe:
    """One probe call running in its own daemon thread."""

    def __init__(self, call: Callable[[], object]) -> None:
        self.done = threading.Event()
        self.error: BaseException | None = None
        self.started = time.perf_counter()
        self.finished: float | None = None
        self._call = call
        threading.Thread(target=self._run, name="health-probe", daemon=True).start()

    def _run(self) -> None:
        try:
            self._call()
        except BaseException as error:  # noqa: BLE001 - reported as the probe's outcome
            self.error = error
        finally:
            self.finished = time.perf_counter()
            self.done.set()


_pending: dict[str, _Probe] = {}
_pending_lock = threading.Lock()


def _forget_pending_in_child() -> None:
    global _pending_lock
    _pending.clear()
    _pending_lock = threading.Lock()


os.register_at_fork(after_in_child=_forget_pending_in_child)


def start_probe(key: str, call: Callable[[], object], timeout_s: float) -> _Probe | ProbeResult:
    """Start `call`; join a probe of `key` already running; report down if that one is stuck.

    Concurrent health checks (nginx and an orchestrator probing at once) share the probe in
    flight instead of calling it stuck: only one older than the timeout is.
    """
    with _pending_lock:
        previous = _pending.get(key)
        if previous is not None and not previous.done.is_set():
            waited_s = time.perf_counter() - previous.started
            if waited_s < timeout_s:
                return previous
            waited_ms = round(waited_s * 1000, 1)
            return ProbeResult("down", 0.0, f"previous probe still pending after {waited_ms} ms")
        probe = _Probe(call)
        _pending[key] = probe
        return probe


def finish_probe(probe: _Probe | ProbeResult, deadline: float, timeout_s: float) -> ProbeResult:
    """Wait for `probe` until the shared `deadline` (a perf_counter time)."""
    if isinstance(probe, ProbeResult):
        return probe
    probe.done.wait(max(0.0, deadline - time.perf_counter()))
    if not probe.done.is_set():
        return ProbeResult(
            "down",
            round((time.perf_counter() - probe.started) * 1000, 1),
            f"timed out after {round(timeout_s * 1000)} ms",
        )
    latency_ms = round(((probe.finished or time.perf_counter()) - probe.started) * 1000, 1)
    if probe.error is not None:
        # The class name only: messages can hold host names or credentials.
        return ProbeResult("down", latency_ms, type(probe.error).__name__)
    return ProbeResult("ok", latency_ms)


def select_one(engine: Engine) -> Callable[[], object]:
    def call() -> object:
        with engine.connect() as connection:
            return connection.execute(text("SELECT 1")).scalar()

    return call


def ping(redis_client: Any) -> Callable[[], object]:
    return redis_client.ping
