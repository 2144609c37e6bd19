"""What gunicorn.conf.py's server hooks do, kept here so they can be read and tested as code.

Order in the master: prepare_master() when the config file loads (before the app may be
preloaded), on_starting() once, then per worker post_fork() / post_worker_init() in the child,
worker_abort() / worker_exit() in the dying child and child_exit() back in the master.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

from loguru import logger

from app.config import Settings
from app.monitoring import crashes, process
from app.server import freeze_live_objects

MULTIPROC_DIR_VARIABLE = "PROMETHEUS_MULTIPROC_DIR"
_OWNED_DIR_VARIABLE = "STEADFAST_OWNS_METRICS_DIR"


def prepare_master() -> None:
    """Choose the metrics directory before anything imports prometheus_client.

    prometheus_client decides once, at import, whether values live in per-process files;
    every worker must inherit the variable. An operator's own directory is respected.
    """
    process.mark_gunicorn_master()
    if os.environ.get(MULTIPROC_DIR_VARIABLE):
        return
    if "prometheus_client.values" in sys.modules:
        # Too late: each worker would keep its own in-memory numbers and /metrics would show
        # whichever worker answered. Fail the start rather than serve misleading metrics.
        raise RuntimeError(
            "prometheus_client was imported before gunicorn.conf.py chose "
            f"{MULTIPROC_DIR_VARIABLE}; keep it out of imports made at app package import"
        )
    os.environ[MULTIPROC_DIR_VARIABLE] = tempfile.mkdtemp(prefix="steadfast-metrics-")
    os.environ[_OWNED_DIR_VARIABLE] = "1"


def on_starting(server: Any) -> None:
    """Start from an empty metrics directory: files of a previous run would be summed in."""
    directory = Path(os.environ[MULTIPROC_DIR_VARIABLE])
    directory.mkdir(parents=True, exist_ok=True)
    for stale in directory.glob("*.db"):
        stale.unlink()
    logger.bind(metrics_dir=str(directory)).info("prometheus multiprocess metrics in {}", directory)


def post_fork(server: Any, worker: Any, settings: Settings) -> None:
    """In the new worker: know we are one, flip readiness on SIGTERM, start the sampler."""
    from app.monitoring.loop_lag import start_sampler

    process.mark_gunicorn_worker()
    _mark_shutdown_on(worker, "handle_exit")
    _mark_shutdown_on(worker, "handle_quit")
    crashes.install_thread_excepthook()
    start_sampler(
        settings.loop_lag_sample_ms, settings.loop_lag_report_s, settings.loop_lag_threshold_ms
    )


def _mark_shutdown_on(worker: Any, handler_name: str) -> None:
    # init_signals() runs after post_fork and installs `self.handle_exit`: an instance
    # attribute set here is what it finds, so readiness flips before the drain begins.
    original = getattr(worker, handler_name)

    def handler(signum: int, frame: Any) -> None:
        process.mark_shutting_down()
        original(signum, frame)

    setattr(worker, handler_name, handler)


def post_worker_init(worker: Any) -> None:
    """The app is loaded and gunicorn's signal handlers are in place."""
    from app.monitoring.loop_lag import current_sampler

    crashes.dump_stacks_on_abort()
    freeze_live_objects()
    sampler = current_sampler()
    if sampler is not None:
        # Importing the app held the interpreter lock for a while; that is boot time, not the
        # lag a request would see, so the first window starts now.
        sampler.restart_window()


def worker_abort(worker: Any) -> None:
    """The master sent SIGABRT (timeout): say where every thread of the worker was."""
    crashes.log_thread_stacks(f"worker {os.getpid()} aborted after the timeout")


def worker_exit(server: Any, worker: Any) -> None:
    from app.monitoring.loop_lag import current_sampler

    sampler = current_sampler()
    if sampler is not None:
        sampler.stop(timeout_s=0.5)


def child_exit(server: Any, worker: Any) -> None:
    """In the master: drop the dead worker's live gauges from the aggregate."""
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)


def on_exit(server: Any) -> None:
    if os.environ.get(_OWNED_DIR_VARIABLE) == "1":
        shutil.rmtree(os.environ[MULTIPROC_DIR_VARIABLE], ignore_errors=True)
