"""Facts about this process for health and metrics: uptime, memory, gunicorn role, shutdown."""

from __future__ import annotations

import os
import resource
import sys
import time

_PAGE_SIZE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


class _ProcessState:
    """Plain attributes, no locks: the shutdown flag is set from a signal handler."""

    def __init__(self) -> None:
        self.started_monotonic = time.monotonic()
        self.pid = os.getpid()
        self.is_gunicorn_worker = False
        self.is_gunicorn_master = False
        self.shutting_down = False


_state = _ProcessState()


def _reset_in_child() -> None:
    # A forked worker is a new process: its uptime starts now and it is not shutting down.
    global _state
    _state = _ProcessState()


os.register_at_fork(after_in_child=_reset_in_child)


def uptime_s() -> float:
    return time.monotonic() - _state.started_monotonic


def mark_gunicorn_master() -> None:
    """Called when gunicorn loads its config: this process forks workers, it serves nothing."""
    _state.is_gunicorn_master = True


def is_gunicorn_master() -> bool:
    return _state.is_gunicorn_master


def mark_gunicorn_worker() -> None:
    """Called by gunicorn's post_fork: this process serves requests for a gunicorn master."""
    _state.is_gunicorn_worker = True


def is_gunicorn_worker() -> bool:
    return _state.is_gunicorn_worker


def mark_shutting_down() -> None:
    """Readiness answers 503 from now on (the worker got SIGTERM and is draining)."""
    _state.shutting_down = True


def is_shutting_down() -> bool:
    return _state.shutting_down


def clear_shutting_down() -> None:
    """For tests that flip the flag in the test process itself."""
    _state.shutting_down = False


def rss_bytes() -> int:
    """Resident set size now (Linux /proc); elsewhere the peak RSS, the best the OS offers."""
    try:
        with open("/proc/self/statm", encoding="ascii") as statm:
            return int(statm.read().split()[1]) * _PAGE_SIZE
    except (OSError, IndexError, ValueError):
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        # ru_maxrss is in kilobytes on Linux, bytes on macOS.
        return peak if sys.platform == "darwin" else peak * 1024
