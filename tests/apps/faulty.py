"""The real app with routes that fail on purpose, for tests that run it under gunicorn.

`gunicorn -c gunicorn.conf.py tests.apps.faulty:app`: these routes exist only here, never in
the application itself.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path

from flask import jsonify, request

from app import create_app
from app.monitoring import process
from tests.blocking import hold_the_gil

app = create_app()


def stall_main_thread(signum: int, frame: object) -> None:
    time.sleep(60)


# Installed at import, which gunicorn does in the worker's main thread after its own handlers.
signal.signal(signal.SIGUSR2, stall_main_thread)


def failing_background_job() -> None:
    raise RuntimeError("background job failed on purpose")


@app.get("/_test/pid")
def pid():
    return jsonify({"pid": os.getpid(), "shutting_down": process.is_shutting_down()})


@app.get("/_test/hog")
def hog():
    hold_the_gil(float(request.args.get("seconds", "0.3")))
    return jsonify({"pid": os.getpid()})


@app.get("/_test/crash-thread")
def crash_thread():
    threading.Thread(target=failing_background_job, name="failing-job").start()
    return jsonify({"pid": os.getpid()})


@app.get("/_test/stall-main-thread")
def stall():
    # Signal handlers run in the main thread, the one that talks to the gunicorn master:
    # sleeping there stops the heartbeat like a deadlocked worker would.
    os.kill(os.getpid(), signal.SIGUSR2)
    return jsonify({"pid": os.getpid()})


@app.get("/_test/in-flight")
def in_flight():
    """Touch `marker` (the test now knows the request is in flight), sleep, then report
    whether this worker is shutting down."""
    Path(request.args["marker"]).touch()
    time.sleep(float(request.args.get("seconds", "1")))
    return jsonify({"pid": os.getpid(), "shutting_down": process.is_shutting_down()})
