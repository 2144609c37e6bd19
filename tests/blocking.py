"""Ways to stall a Python process on purpose, for the loop-lag and worker-timeout tests."""

from __future__ import annotations

import time


def hold_the_gil(seconds: float) -> None:
    """One C call lasting about `seconds`: no bytecode runs, so no other thread can take the
    interpreter lock (nor can a Python signal handler run) until it returns."""
    fastest = float("inf")
    for _ in range(3):  # the fastest run: a busy machine may preempt one
        started = time.perf_counter()
        sum(range(1_000_000))
        fastest = min(fastest, time.perf_counter() - started)
    per_second = 1_000_000 / max(fastest, 1e-6)
    sum(range(int(seconds * per_second)))
