"""Real processes for tests: gunicorn started on a free loopback port, polled until it serves."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import requests

REPO_ROOT = Path(__file__).resolve().parent.parent
BIN_DIR = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_until_serving(url: str, deadline_s: float = 30.0, process=None) -> None:
    """Poll `url` until any HTTP answer comes back; no fixed sleeps."""
    give_up_at = time.monotonic() + deadline_s
    while time.monotonic() < give_up_at:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"process exited with {process.returncode} before serving")
        try:
            requests.get(url, timeout=2)
            return
        except (requests.ConnectionError, requests.Timeout):
            # Refused before the bind, or accepted by the backlog while workers still boot.
            time.sleep(0.05)
    raise TimeoutError(f"{url} did not answer within {deadline_s} s")


def run_flask(environment: Mapping[str, str], *arguments: str, timeout: float = 120):
    return subprocess.run(
        [sys.executable, "-m", "flask", *arguments],
        cwd=REPO_ROOT,
        env={**environment, "FLASK_APP": "wsgi.py"},
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def migrated_sqlite_environment(tmp_path: Path, **settings: str) -> dict[str, str]:
    """The process environment plus a development app on a fresh SQLite file, migrated with
    `flask db upgrade` as `make run` does; `settings` are extra variables (strings)."""
    environment = {
        **os.environ,
        "APP_ENV": "development",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'served.db'}",
        "WEB_CONCURRENCY": "1",
        **settings,
    }
    migrated = run_flask(environment, "db", "upgrade")
    assert migrated.returncode == 0, migrated.stderr
    return environment


@dataclass
class RunningServer:
    process: subprocess.Popen
    base_url: str
    log_path: Path

    def logs(self) -> str:
        return self.log_path.read_text(errors="replace")


@contextmanager
def gunicorn_server(
    environment: Mapping[str, str],
    log_path: Path,
    *,
    ready_path: str = "/health/live",
    app_module: str = "wsgi:app",
) -> Iterator[RunningServer]:
    """gunicorn with the project's gunicorn.conf.py on a free port; stopped (TERM, then KILL).

    `app_module` lets a deployment test serve a test-only wrapper (tests/apps/) of the app.
    """
    port = free_port()
    env = {**os.environ, **environment, "PORT": str(port)}
    with open(log_path, "wb") as log_file:
        process = subprocess.Popen(
            [
                str(BIN_DIR / "gunicorn"),
                "-c",
                "gunicorn.conf.py",
                "--bind",
                f"127.0.0.1:{port}",
                app_module,
            ],
            cwd=REPO_ROOT,
            env=env,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        server = RunningServer(process, f"http://127.0.0.1:{port}", log_path)
        try:
            wait_until_serving(server.base_url + ready_path, process=process)
            yield server
        finally:
            stop_process(process)


def stop_process(process: subprocess.Popen, grace_s: float = 30.0) -> None:
    """TERM, then KILL the whole process group if it has not exited within `grace_s`."""
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=grace_s)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)
