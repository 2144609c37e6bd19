"""Cold start of one process: importing the app, building it, and the first response served.

Run as `python -m benchmarks.cold_start [--target hello] [PATH]` in a fresh interpreter (the
runner does, with the benchmark's production environment); prints one JSON line after the
marker. `steadfast` (the default) times `import app`, `create_app()` and a GET of PATH
(/health/live); `hello` times the bare Flask baseline the same way (its module imports Flask
and builds its app in one step, so its `create_app_s` is 0) and a GET of /. The target is an
absolute time, so the runner measures both, interleaved: bare Flask's start on the same host
in the same minutes says how much of Steadfast's figure is the host's speed.
"""

from __future__ import annotations

import argparse
import json
import sys
import time

RESULT_MARKER = "BENCH_COLD_START "
TARGETS = ("steadfast", "hello")
DEFAULT_PATHS = {"steadfast": "/health/live", "hello": "/"}


def measure(path: str | None = None, target: str = "steadfast") -> dict[str, float | int]:
    started = time.perf_counter()
    if target == "hello":
        from benchmarks.baselines.hello import app

        imported = created = time.perf_counter()
    else:
        from app import create_app

        imported = time.perf_counter()
        app = create_app()
        created = time.perf_counter()
    response = app.test_client().get(
        path or DEFAULT_PATHS[target], headers={"X-Forwarded-Proto": "https"}
    )
    answered = time.perf_counter()
    return {
        "import_s": round(imported - started, 4),
        "create_app_s": round(created - imported, 4),
        "first_response_s": round(answered - created, 4),
        "total_s": round(answered - started, 4),
        "status": response.status_code,
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="time one cold start")
    parser.add_argument("--target", choices=TARGETS, default="steadfast")
    parser.add_argument("path", nargs="?", help="default: /health/live, or / for hello")
    arguments = parser.parse_args()
    result = measure(arguments.path, arguments.target)
    sys.stdout.write(RESULT_MARKER + json.dumps(result) + "\n")
