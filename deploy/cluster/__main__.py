"""`python -m deploy.cluster`: run the local cluster in the foreground until Ctrl-C.

It creates (if missing) and migrates the database, starts a private redis-server unless
--redis-url is given, two gunicorn instances and nginx in front of them, and prints the URLs.
"""

from __future__ import annotations

import argparse
import contextlib
import signal
import subprocess
import tempfile
import threading
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg

from deploy.cluster.local import LOOPBACK, LocalCluster, free_port, stop_process

# The docstring's first line, kept apart because `python -OO` drops docstrings.
SUMMARY = "`python -m deploy.cluster`: run the local cluster in the foreground until Ctrl-C."

DEFAULT_DATABASE_URL = "postgresql://postgres@127.0.0.1:5432/steadfast_cluster"


def ensure_database(url: str) -> None:
    """Create the database named in `url` when it does not exist yet."""
    parts = urlsplit(url)
    name = parts.path.lstrip("/")
    admin_url = urlunsplit(parts._replace(path="/postgres"))
    with psycopg.connect(admin_url, autocommit=True, connect_timeout=5) as connection:
        exists = connection.execute(
            "SELECT 1 FROM pg_database WHERE datname = %s", (name,)
        ).fetchone()
        if not exists:
            connection.execute(f'CREATE DATABASE "{name}"')


def start_private_redis(directory: Path) -> tuple[subprocess.Popen, str]:
    port = free_port()
    process = subprocess.Popen(
        [
            "redis-server",
            "--bind",
            LOOPBACK,
            "--port",
            str(port),
            "--dir",
            str(directory),
            "--save",
            "",
            "--appendonly",
            "yes",
        ],
        stdout=subprocess.DEVNULL,
        start_new_session=True,
    )
    return process, f"redis://{LOOPBACK}:{port}/0"


def main() -> None:
    parser = argparse.ArgumentParser(description=SUMMARY)
    parser.add_argument("--database-url", default=DEFAULT_DATABASE_URL)
    parser.add_argument("--redis-url", help="default: a private redis-server on a free port")
    parser.add_argument("--instances", type=int, default=2)
    parser.add_argument("--workers", type=int, default=1, help="gunicorn workers per instance")
    parser.add_argument("--port", type=int, default=0, help="nginx port (default: a free one)")
    options = parser.parse_args()

    workdir = Path(tempfile.mkdtemp(prefix="steadfast-cluster-"))
    ensure_database(options.database_url)
    redis_process = None
    redis_url = options.redis_url
    if redis_url is None:
        redis_process, redis_url = start_private_redis(workdir)
    cluster = LocalCluster(
        database_url=options.database_url,
        redis_url=redis_url,
        instances=options.instances,
        workers_per_instance=options.workers,
        workdir=workdir,
        port=options.port,
    )
    stopped = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopped.set())
    try:
        with cluster:
            print(f"nginx       {cluster.url}")
            for member in cluster.members:
                print(f"{member.name:<11} {member.url}  (log {member.log_path})")
            print(f"redis       {redis_url}\nlogs        {workdir}\nCtrl-C stops everything.")
            with contextlib.suppress(KeyboardInterrupt):
                stopped.wait()
    finally:
        stop_process(redis_process)


if __name__ == "__main__":
    main()
