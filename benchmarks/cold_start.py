"""Cold start of one process: importing `app`, create_app(), and the first response served.

Run as `python -m benchmarks.cold_start PATH` in a fresh interpreter (the runner does, with the
benchmark's production environment); prints one JSON line after the marker.
"""

from __future__ import annotations

import json
import sys
import time

RESULT_MARKER = "BENCH_COLD_START "


def measure(path: str) -> dict[str, float | int]:
    started = time.perf_counter()
    from app import create_app

    imported = time.perf_counter()
    app = create_app()
    created = time.perf_counter()
    response = app.test_client().get(path, headers={"X-Forwarded-Proto": "https"})
    answered = time.perf_counter()
    return {
        "import_s": round(imported - started, 4),
        "create_app_s": round(created - imported, 4),
        "first_response_s": round(answered - created, 4),
        "total_s": round(answered - started, 4),
        "status": response.status_code,
    }


if __name__ == "__main__":
    result = measure(sys.argv[1] if len(sys.argv) > 1 else "/health/live")
    sys.stdout.write(RESULT_MARKER + json.dumps(result) + "\n")
