"""Test-only WSGI module: the real app plus routes that let deployment tests watch the server.

`/_test/slow` holds a request open, `/_test/whoami` says which worker served it and what the app
believes about the client, `/_test/database` which PostgreSQL session the worker uses. They live
here, never in the app: a debug route in production code is a door left open.
"""

from __future__ import annotations

import os
import time

from flask import request
from loguru import logger
from sqlalchemy import text

from app import create_app
from app.extensions import db

MAX_SLOW_S = 10.0

app = create_app()
# With TEST_QUERY_AT_IMPORT the master itself uses the database while loading (as a preloaded
# app that warms a cache would), leaving a connection in the pool before the workers fork.
IMPORT_BACKEND_PID: int | None = None
IMPORT_PROCESS_PID = os.getpid()
if os.environ.get("TEST_QUERY_AT_IMPORT") == "1":
    with app.app_context():
        IMPORT_BACKEND_PID = db.session.execute(text("SELECT pg_backend_pid()")).scalar_one()
        db.session.remove()


@app.get("/_test/slow")
def slow() -> dict:
    seconds = min(float(request.args.get("seconds", "1")), MAX_SLOW_S)
    logger.info("slow request started, sleeping {} s", seconds)
    time.sleep(seconds)
    return {"success": True, "data": {"slept_s": seconds, "pid": os.getpid()}}


@app.route("/_test/whoami", methods=["GET", "POST"])
def whoami() -> dict:
    return {
        "success": True,
        "data": {
            "pid": os.getpid(),
            "remote_addr": request.remote_addr,
            "scheme": request.scheme,
            "host": request.host,
            "script_root": request.script_root,
        },
    }


@app.get("/_test/database")
def database() -> dict:
    backend_pid = db.session.execute(text("SELECT pg_backend_pid()")).scalar_one()
    return {
        "success": True,
        "data": {
            "pid": os.getpid(),
            "backend_pid": backend_pid,
            "import_pid": IMPORT_PROCESS_PID,
            "import_backend_pid": IMPORT_BACKEND_PID,
        },
    }
