"""Loop-latency sampler: a daemon thread that measures how late it wakes, per worker process.

In a threaded worker every request shares one interpreter lock. A call that holds it (a long
regex, a big pure-C computation, a blocking C extension) delays every other thread, and this
sampler sees the delay as oversleeping. Its figures are the process's responsiveness.
"""

from __future__ import annotations

import math
import os
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass

from loguru import logger

# A window holds at most this many samples (a 1 ms sample over 60 s); older ones are dropped.
MAX_SAMPLES_PER_WINDOW = 60_000


@dataclass(frozen=True)
class LagFigures:
    """Lateness of the sampler's wake-ups over one report window, in milliseconds."""

    p50_ms: float
    p99_ms: float
    max_ms: float
    samples: int

    def as_dict(self) -> dict[str, float | int]:
        return asdict(self)


def percentile(sorted_values: list[float], fraction: float) -> float:
    """Nearest-rank percentile of an ascending list (0.0 for an empty one)."""
    if not sorted_values:
        return 0.0
    rank = math.ceil(fraction * len(sorted_values))
    return sorted_values[max(0, min(len(sorted_values), rank) - 1)]


def summarise(samples_ms: list[float]) -> LagFigures:
    ordered = sorted(samples_ms)
    return LagFigures(
        p50_ms=round(percentile(ordered, 0.50), 3),
        p99_ms=round(percentile(ordered, 0.99), 3),
        max_ms=round(ordered[-1], 3) if ordered else 0.0,
        samples=len(ordered),
    )


class LoopLagSampler:
    """Sleeps `sample_ms`, records how late it woke; reports and resets every `report_s`."""

    def __init__(
        self,
        sample_ms: float,
        report_s: float,
        threshold_ms: float,
        on_sample: Callable[[float], None] | None = None,
        on_report: Callable[[LagFigures], None] | None = None,
    ) -> None:
        self.sample_s = sample_ms / 1000
        self.report_s = report_s
        self.threshold_ms = threshold_ms
        self._on_sample = on_sample
        self._on_report = on_report
        self._window: list[float] = []
        self._generation = 0
        self._latest: LagFigures | None = None
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.pid: int | None = None

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> None:
        if self.running:
            return
        self.pid = os.getpid()
        self._thread = threading.Thread(target=self._run, name="loop-lag-sampler", daemon=True)
        self._thread.start()

    def stop(self, timeout_s: float = 2.0) -> None:
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout_s)

    def figures(self) -> LagFigures:
        """The last full report, or the current window's figures before the first report."""
        with self._lock:
            if self._latest is not None:
                return self._latest
            return summarise(self._window)

    def restart_window(self) -> None:
        """Forget the samples taken so far in this window."""
        with self._lock:
            self._window = []
            # The sample being slept on started before: it must not land in the new window.
            self._generation += 1

    def _run(self) -> None:
        next_report = time.monotonic() + self.report_s
        while not self._stop.is_set():
            generation = self._generation
            before = time.monotonic()
            if self._stop.wait(self.sample_s):
                return
            lag_ms = max(0.0, (time.monotonic() - before - self.sample_s) * 1000)
            self._record(lag_ms, generation)
            if time.monotonic() >= next_report:
                self._report()
                next_report = time.monotonic() + self.report_s

    def _record(self, lag_ms: float, generation: int) -> None:
        with self._lock:
            if generation != self._generation:
                return
            if len(self._window) < MAX_SAMPLES_PER_WINDOW:
                self._window.append(lag_ms)
        if self._on_sample is not None:
            self._on_sample(lag_ms)

    def _report(self) -> None:
        with self._lock:
            figures = summarise(self._window)
            self._window = []
            self._latest = figures
        over = figures.p99_ms > self.threshold_ms
        log = logger.bind(
            loop_lag_p50_ms=figures.p50_ms,
            loop_lag_p99_ms=figures.p99_ms,
            loop_lag_max_ms=figures.max_ms,
            loop_lag_samples=figures.samples,
            loop_lag_threshold_ms=self.threshold_ms,
            pid=self.pid,
        )
        if over:
            log.warning(
                "loop lag over threshold: p99 {} ms > {} ms (p50 {} ms, max {} ms)",
                figures.p99_ms,
                self.threshold_ms,
                figures.p50_ms,
                figures.max_ms,
            )
        else:
            log.info(
                "loop lag p50 {} ms, p99 {} ms, max {} ms",
                figures.p50_ms,
                figures.p99_ms,
                figures.max_ms,
            )
        if self._on_report is not None:
            self._on_report(figures)


_sampler: LoopLagSampler | None = None
_sampler_lock = threading.Lock()


def _forget_sampler_in_child() -> None:
    # Threads do not survive fork: a child must start its own sampler, not trust the parent's.
    global _sampler, _sampler_lock
    _sampler = None
    _sampler_lock = threading.Lock()


os.register_at_fork(after_in_child=_forget_sampler_in_child)


def start_sampler(sample_ms: float, report_s: float, threshold_ms: float) -> LoopLagSampler:
    """Start this process's sampler once; later calls return the running one."""
    global _sampler
    with _sampler_lock:
        if _sampler is not None and _sampler.running and _sampler.pid == os.getpid():
            return _sampler
        from app.monitoring import metrics

        _sampler = LoopLagSampler(
            sample_ms,
            report_s,
            threshold_ms,
            on_sample=metrics.observe_loop_lag,
            on_report=metrics.set_loop_lag_figures,
        )
        _sampler.start()
        logger.bind(
            pid=os.getpid(), sample_ms=sample_ms, report_s=report_s, threshold_ms=threshold_ms
        ).debug("loop-lag sampler started")
        return _sampler


def current_sampler() -> LoopLagSampler | None:
    sampler = _sampler
    if sampler is not None and sampler.pid == os.getpid():
        return sampler
    return None
