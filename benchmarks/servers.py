"""The processes under test: gunicorn targets on loopback, their database, and their memory."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import sysconfig
import time
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import psycopg
import requests

REPO_ROOT = Path(__file__).resolve().parent.parent
BIN_DIR = Path(sys.executable).parent
PROJECT_GUNICORN_CONFIG = REPO_ROOT / "gunicorn.conf.py"
BASELINE_GUNICORN_CONFIG = REPO_ROOT / "benchmarks" / "baselines" / "gunicorn.conf.py"


@dataclass(frozen=True)
class Target:
    """A WSGI app and the gunicorn config it is served with."""

    name: str
    wsgi_app: str
    gunicorn_config: Path
    ready_path: str


STEADFAST = Target("steadfast", "wsgi:app", PROJECT_GUNICORN_CONFIG, "/")
HELLO = Target("hello", "benchmarks.baselines.hello:app", BASELINE_GUNICORN_CONFIG, "/")
# Steadfast again, started with the OTEL_* variables set (see run.traced_environment).
TRACED = Target("traced", "wsgi:app", PROJECT_GUNICORN_CONFIG, "/")
REFERENCE = Target("reference", "benchmarks.baselines.reference:app", BASELINE_GUNICORN_CONFIG, "/")


@dataclass
class Server:
    target: Target
    process: subprocess.Popen
    base_url: str
    log_path: Path
    # From spawning the gunicorn master to its first HTTP answer.
    ready_s: float

    def worker_pids(self) -> list[int]:
        return child_pids(self.process.pid)

    def worker_boots(self) -> int:
        """Workers booted so far, the first ones included (max_requests recycles them)."""
        return count_worker_boots(self.log_path.read_text(errors="replace"))

    def worker_memory(self) -> list[dict[str, float]]:
        return [m for pid in self.worker_pids() if (m := memory_mib(pid)) is not None]

    def worker_cpu_ticks(self) -> dict[int, int]:
        """Each worker's CPU so far (user + system, in clock ticks), by pid."""
        return {pid: cpu_ticks(Path(f"/proc/{pid}/stat")) for pid in self.worker_pids()}


def busiest_worker_share(before: dict[int, int], after: dict[int, int]) -> float | None:
    """The largest share of the CPU the workers spent between two `worker_cpu_ticks` readings
    that one worker spent; None with fewer than two workers in both, or no CPU spent.

    wrk opens its connections all at once, and gthread workers race to accept them: one
    worker can end up holding nearly all of them for the whole run while the other idles
    (docs/performance.md, finding 52). This says how evenly a run's work was spread.
    """
    spent = [after[pid] - before[pid] for pid in after.keys() & before.keys()]
    total = sum(spent)
    if len(spent) < 2 or total <= 0:
        return None
    return round(max(spent) / total, 3)


_WORKER_BOOT = re.compile(r"Booting worker with pid: (\d+)")


def count_worker_boots(log_text: str) -> int:
    """Distinct workers a gunicorn log says were booted.

    By pid, not by line: a baseline's master runs the project's gunicorn.conf.py to copy its
    settings, which also routes gunicorn's logger into the app's JSON sink, so each of its
    lines is written twice (plain and JSON).
    """
    return len(set(_WORKER_BOOT.findall(log_text)))


# The Docker image runs Python with PYTHONOPTIMIZE=2 (-OO: no docstrings, no asserts); the
# benchmark's processes, baselines included, run at the same level.
PRODUCTION_OPTIMIZE_LEVEL = 2


def compile_bytecode(optimize: int = PRODUCTION_OPTIMIZE_LEVEL) -> None:
    """Compile the bytecode the processes will load, as the Docker image does at build time.

    The project's modules and the virtualenv's, at optimisation level `optimize` (pip compiled
    the virtualenv for level 0 only). Without it, a process started with
    PYTHONDONTWRITEBYTECODE (set on some hosts, and in the image, where the code is read-only)
    compiles every module it imports from source at each start: the cold start and every
    worker boot would measure the compiler, not the service.
    """
    sources = [REPO_ROOT / name for name in ("app", "benchmarks", "wsgi.py", "gunicorn.conf.py")]
    sources.append(Path(sysconfig.get_paths()["purelib"]))
    subprocess.run(
        [sys.executable, "-m", "compileall", "-q", "-o", str(optimize), *map(str, sources)],
        check=True,
        timeout=300,
    )


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def child_pids(parent_pid: int) -> list[int]:
    """Direct children of a process, read from /proc (the gunicorn workers of a master)."""
    children = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # The command name is in parentheses and may hold spaces: fields start after ")".
        fields = stat.rsplit(")", 1)[1].split()
        if int(fields[1]) == parent_pid:
            children.append(int(entry.name))
    return sorted(children)


def cpu_ticks(stat_path: Path) -> int:
    """utime + stime of a process or thread, from its /proc stat file; 0 once it is gone."""
    try:
        fields = stat_path.read_text().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError):
        return 0
    return int(fields[11]) + int(fields[12])


def memory_mib(pid: int) -> dict[str, float] | None:
    """RSS (what the target is about), and PSS and USS (what the worker really costs, with
    shared libraries and copy-on-write pages split among processes), in MiB; None once gone."""
    try:
        rollup = Path(f"/proc/{pid}/smaps_rollup").read_text()
    except OSError:
        return None
    kib: dict[str, int] = {}
    for line in rollup.splitlines()[1:]:
        name, _, rest = line.partition(":")
        if rest.strip().endswith("kB"):
            kib[name] = int(rest.split()[0])
    private = kib.get("Private_Clean", 0) + kib.get("Private_Dirty", 0)
    # Three decimals keep the KiB: the RSS target is judged on them, not on a rounded figure.
    return {
        "rss": round(kib.get("Rss", 0) / 1024, 3),
        "pss": round(kib.get("Pss", 0) / 1024, 3),
        "uss": round(private / 1024, 3),
    }


def wait_until_serving(url: str, process: subprocess.Popen, deadline_s: float = 60.0) -> None:
    """Poll `url` until any HTTP answer comes back; no fixed sleeps."""
    give_up_at = time.monotonic() + deadline_s
    while time.monotonic() < give_up_at:
        if process.poll() is not None:
            raise RuntimeError(f"{url}: the server exited with {process.returncode}")
        try:
            requests.get(url, timeout=2, allow_redirects=False)
            return
        except requests.ConnectionError:
            time.sleep(0.02)
    raise TimeoutError(f"{url} did not answer within {deadline_s} s")


@contextmanager
def serving(target: Target, environment: Mapping[str, str], log_path: Path) -> Iterator[Server]:
    """gunicorn serving `target` on a free loopback port; stopped with TERM (then KILL)."""
    port = free_port()
    started = time.perf_counter()
    with open(log_path, "wb") as log_file:
        process = subprocess.Popen(
            [
                str(BIN_DIR / "gunicorn"),
                "--config",
                str(target.gunicorn_config),
                "--bind",
                f"127.0.0.1:{port}",
                target.wsgi_app,
            ],
            cwd=REPO_ROOT,
            env={**environment, "PORT": str(port)},
            stdout=log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            base_url = f"http://127.0.0.1:{port}"
            wait_until_serving(base_url + target.ready_path, process)
            yield Server(target, process, base_url, log_path, time.perf_counter() - started)
        except RuntimeError as error:
            tail = log_path.read_text(errors="replace")[-3000:]
            raise RuntimeError(f"{target.name}: {error}\n--- log tail ---\n{tail}") from error
        finally:
            stop(process)


def stop(process: subprocess.Popen) -> None:
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)


@contextmanager
def temporary_database(admin_url: str) -> Iterator[str]:
    """A fresh PostgreSQL database for one benchmark run; dropped afterwards."""
    name = f"steadfast_bench_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(admin_url, autocommit=True, connect_timeout=3) as connection:
        connection.execute(f'CREATE DATABASE "{name}"')
    base, _, _ = admin_url.rpartition("/")
    try:
        yield f"{base}/{name}"
    finally:
        with psycopg.connect(admin_url, autocommit=True, connect_timeout=3) as connection:
            connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def migrate(environment: Mapping[str, str]) -> None:
    """`flask db upgrade`, exactly as an operator runs it."""
    completed = subprocess.run(
        [str(BIN_DIR / "flask"), "db", "upgrade"],
        cwd=REPO_ROOT,
        env={**environment, "FLASK_APP": "wsgi.py"},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if completed.returncode != 0:
        raise RuntimeError(f"flask db upgrade failed:\n{completed.stdout}\n{completed.stderr}")
