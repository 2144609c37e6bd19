"""What the password hash alone allows: `workers` processes hashing side by side, nothing else.

Login and registration are bounded by argon2id by design. Their baseline is workers / hash
time, where the hash time is measured with as many hashes running at once as the server has
workers (they share cores and memory bandwidth exactly as the workers do), in the same run,
right beside the load it is compared with. Each process uses the app's own hasher
(app/services/passwords.py), so its parameters and allocator settings are the served ones.

    python -m benchmarks.hashing --operation verify --duration 5   # one process's figures
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

RESULT_MARKER = "BENCH_HASH "
REPO_ROOT = Path(__file__).resolve().parent.parent
SAMPLE_PASSWORD = "bench-Passw0rd-not-common-41"


@dataclass(frozen=True)
class HashCapacity:
    operation: str
    workers: int
    # Median seconds of one operation while `workers` of them run at once.
    seconds_per_operation: float
    # workers / seconds_per_operation: the requests/s the hash alone would allow.
    capacity_per_s: float
    operations: int


def _loop(operation: str, duration_s: float) -> dict[str, float | int]:
    from app.services.passwords import hash_password, verify_password

    stored = hash_password(SAMPLE_PASSWORD)
    timings = []
    deadline = time.perf_counter() + duration_s
    while time.perf_counter() < deadline:
        started = time.perf_counter()
        if operation == "hash":
            hash_password(SAMPLE_PASSWORD)
        else:
            verify_password(stored, SAMPLE_PASSWORD)
        timings.append(time.perf_counter() - started)
    return {"operations": len(timings), "median_s": statistics.median(timings)}


def measure(
    operation: str, workers: int, duration_s: float, environment: dict[str, str] | None = None
) -> HashCapacity:
    """Run `workers` hashing processes at once for `duration_s`; combine their figures."""
    processes = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "benchmarks.hashing",
                "--operation",
                operation,
                "--duration",
                str(duration_s),
            ],
            cwd=REPO_ROOT,
            env=environment if environment is not None else dict(os.environ),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )  # fmt: skip
        for _ in range(workers)
    ]
    results = []
    for process in processes:
        stdout, stderr = process.communicate(timeout=duration_s + 60)
        lines = [line for line in stdout.splitlines() if line.startswith(RESULT_MARKER)]
        if process.returncode != 0 or not lines:
            raise RuntimeError(f"hash measurement failed:\n{stderr[-2000:]}")
        results.append(json.loads(lines[-1].removeprefix(RESULT_MARKER)))
    seconds = statistics.median(result["median_s"] for result in results)
    return HashCapacity(
        operation=operation,
        workers=workers,
        seconds_per_operation=round(seconds, 5),
        capacity_per_s=round(workers / seconds, 2),
        operations=sum(result["operations"] for result in results),
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="time argon2id operations in a loop")
    parser.add_argument("--operation", choices=("hash", "verify"), default="hash")
    parser.add_argument("--duration", type=float, default=3.0)
    arguments = parser.parse_args()
    figures = _loop(arguments.operation, arguments.duration)
    sys.stdout.write(RESULT_MARKER + json.dumps(figures) + "\n")
