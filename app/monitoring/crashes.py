"""Uncaught errors outside requests: a crashed background thread, a worker stuck past its timeout.

A thread that dies silently leaves a worker that looks alive but no longer does its job (no
loop-lag figures, no retries). So an exception escaping any thread is logged as fatal and the
worker asks itself to stop gracefully (SIGTERM, as gunicorn would send): in-flight requests
finish and the master forks a fresh worker. The master itself never runs this hook's kill.
"""

from __future__ import annotations

import faulthandler
import os
import signal
import sys
import threading
import traceback

from loguru import logger

from app.monitoring import process


def handle_thread_exception(args: threading.ExceptHookArgs) -> None:
    if args.exc_type is SystemExit:
        return
    thread_name = args.thread.name if args.thread is not None else "unknown"
    gunicorn_worker = process.is_gunicorn_worker()
    logger.opt(exception=(args.exc_type, args.exc_value, args.exc_traceback)).bind(
        fatal=True, thread=thread_name, pid=os.getpid()
    ).critical(
        "fatal: uncaught {} in thread {}; {}",
        args.exc_type.__name__,
        thread_name,
        "stopping this worker gracefully so gunicorn replaces it"
        if gunicorn_worker
        else "the process keeps running (not a gunicorn worker)",
    )
    if gunicorn_worker:
        os.kill(os.getpid(), signal.SIGTERM)


def install_thread_excepthook() -> None:
    """Route every thread's uncaught exception to the fatal handler (idempotent)."""
    threading.excepthook = handle_thread_exception


def thread_stacks() -> dict[str, str]:
    """The current stack of every thread of this process, keyed by 'name (ident)'."""
    names = {thread.ident: thread.name for thread in threading.enumerate()}
    return {
        f"{names.get(ident, 'unknown')} ({ident})": "".join(traceback.format_stack(frame))
        for ident, frame in sys._current_frames().items()
    }


def log_thread_stacks(reason: str) -> None:
    stacks = thread_stacks()
    logger.bind(fatal=True, pid=os.getpid(), thread_stacks=stacks).critical(
        "{}: where its {} thread(s) were: {}", reason, len(stacks), ", ".join(stacks)
    )


def dump_stacks_on_abort() -> None:
    """Let SIGABRT (and a crash) print every thread's stack from C, even while a thread holds
    the interpreter lock.

    gunicorn's Python-level SIGABRT handler, and so our worker_abort hook, cannot run while a C
    call holds the lock, and the master sends SIGKILL soon after. faulthandler writes from the
    signal handler itself, then restores and re-raises to the previous (gunicorn's) handler.
    Must run after gunicorn's init_signals(), which would otherwise replace it.
    """
    faulthandler.enable(file=sys.stderr, all_threads=True)
