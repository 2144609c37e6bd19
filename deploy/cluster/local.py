"""A local cluster: N gunicorn instances of the app behind one nginx upstream, one PostgreSQL
database and one Redis, all on loopback. Used by `python -m deploy.cluster` and by the tests."""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from string import Template

import requests

REPO_ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = Path(__file__).with_name("nginx.conf.template")
LOOPBACK = "127.0.0.1"
STOP_DEADLINE_S = 30.0


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind((LOOPBACK, 0))
        return probe.getsockname()[1]


def _executable(name: str) -> str:
    """A tool beside the running interpreter (the virtualenv's gunicorn), else on PATH."""
    beside = Path(sys.executable).parent / name
    if beside.exists():
        return str(beside)
    found = shutil.which(name) or shutil.which(name, path="/usr/sbin:/usr/local/sbin")
    if found is None:
        raise FileNotFoundError(f"{name} is not installed (apt-get install -y {name})")
    return found


def wait_until_answering(url: str, deadline_s: float, process: subprocess.Popen) -> None:
    """Poll until `url` gives any HTTP answer; fail early if the process died."""
    give_up_at = time.monotonic() + deadline_s
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"{process.args[0]} exited with {process.returncode}")
        try:
            requests.get(url, timeout=1)
            return
        except requests.RequestException:
            if time.monotonic() > give_up_at:
                raise TimeoutError(f"{url} did not answer within {deadline_s} s") from None
            time.sleep(0.05)


def stop_process(process: subprocess.Popen | None, sig: int = signal.SIGTERM) -> None:
    """Signal, wait with a deadline, then kill the whole process group."""
    if process is None or process.poll() is not None:
        return
    process.send_signal(sig)
    try:
        process.wait(timeout=STOP_DEADLINE_S)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)


def child_pids(parent_pid: int) -> list[int]:
    """Processes whose parent is `parent_pid`, read from /proc (Linux)."""
    children = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            # The command name may hold spaces: the fields after its closing ")" are fixed.
            fields = stat.read_text().rpartition(")")[2].split()
        except OSError:
            continue
        if int(fields[1]) == parent_pid:
            children.append(int(stat.parent.name))
    return sorted(children)


@dataclass
class Instance:
    """One gunicorn master (and its workers) serving the app on its own port."""

    name: str
    port: int
    log_path: Path
    process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    def worker_pids(self) -> list[int]:
        """The gunicorn workers: children of the master."""
        if self.process is None:
            return []
        return child_pids(self.process.pid)


@dataclass
class LocalCluster:
    """Start with `with LocalCluster(database_url=..., redis_url=...) as cluster:`.

    The database must exist; it is migrated on start. Environment variables in `environment`
    are laid over the defaults given to every instance (rate limits, timeouts, ...).
    """

    database_url: str
    redis_url: str
    instances: int = 2
    workers_per_instance: int = 1
    threads_per_worker: int = 4
    environment: Mapping[str, str] = field(default_factory=dict)
    workdir: Path | None = None
    email_worker: bool | None = None  # None: start `flask worker` when the app has it
    port: int = 0

    def __post_init__(self) -> None:
        self._own_workdir = self.workdir is None
        self.workdir = Path(self.workdir or tempfile.mkdtemp(prefix="steadfast-cluster-"))
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.port = self.port or free_port()
        self.members: list[Instance] = [
            Instance(f"app{index + 1}", free_port(), self.workdir / f"app{index + 1}.log")
            for index in range(self.instances)
        ]
        self.nginx: subprocess.Popen | None = None
        self.worker: subprocess.Popen | None = None
        self.jwt_secret = secrets.token_urlsafe(48)

    @property
    def url(self) -> str:
        """The one address clients use: nginx."""
        return f"http://{LOOPBACK}:{self.port}"

    @property
    def nginx_prefix(self) -> Path:
        return self.workdir / "nginx"

    def app_environment(self) -> dict[str, str]:
        return {
            **os.environ,
            "APP_ENV": "staging",
            "DATABASE_URL": self.database_url,
            "REDIS_URL": self.redis_url,
            "JWT_SECRET": self.jwt_secret,
            "LOG_FORMAT": "json",
            "EMAIL_BACKEND": "console",
            # nginx on the same host is the one hop whose X-Forwarded-* are believed.
            "TRUSTED_PROXIES": "1",
            "WEB_CONCURRENCY": str(self.workers_per_instance),
            "GUNICORN_THREADS": str(self.threads_per_worker),
            "PYTHONUNBUFFERED": "1",
            **self.environment,
        }

    def start(self) -> LocalCluster:
        try:
            self.migrate()
            for member in self.members:
                self._start_instance(member)
            if self._wants_email_worker():
                self._start_email_worker()
            self._start_nginx()
        except BaseException:
            self.stop()
            raise
        return self

    def migrate(self) -> None:
        result = subprocess.run(
            [sys.executable, "-m", "flask", "db", "upgrade"],
            cwd=REPO_ROOT,
            env={**self.app_environment(), "FLASK_APP": "wsgi.py"},
            capture_output=True,
            text=True,
            timeout=120,
        )
        if result.returncode != 0:
            raise RuntimeError(f"flask db upgrade failed:\n{result.stdout}\n{result.stderr}")

    def stop(self) -> None:
        """Stop nginx, then the instances and the email worker; safe to call twice."""
        # QUIT: nginx finishes the requests in flight before it exits.
        stop_process(self.nginx, signal.SIGQUIT)
        for member in self.members:
            stop_process(member.process)
        stop_process(self.worker)

    def stop_instance(self, name: str) -> None:
        stop_process(self.member(name).process)

    def start_instance(self, name: str) -> None:
        self._start_instance(self.member(name))

    def member(self, name: str) -> Instance:
        return next(member for member in self.members if member.name == name)

    def logs(self) -> str:
        """Every instance's and the email worker's log, concatenated."""
        paths = [member.log_path for member in self.members] + [self.workdir / "worker.log"]
        return "\n".join(path.read_text(errors="replace") for path in paths if path.exists())

    def cleanup(self) -> None:
        if self._own_workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self) -> LocalCluster:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def _start_instance(self, member: Instance) -> None:
        with open(member.log_path, "ab") as log:
            member.process = subprocess.Popen(
                [
                    _executable("gunicorn"),
                    "-c",
                    "gunicorn.conf.py",
                    "--bind",
                    f"{LOOPBACK}:{member.port}",
                    "wsgi:app",
                ],
                cwd=REPO_ROOT,
                env={**self.app_environment(), "PORT": str(member.port)},
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        wait_until_answering(member.url + "/health/live", 60, member.process)

    def _wants_email_worker(self) -> bool:
        if self.email_worker is not None:
            return self.email_worker
        probe = subprocess.run(
            [sys.executable, "-m", "flask", "worker", "--help"],
            cwd=REPO_ROOT,
            env={**self.app_environment(), "FLASK_APP": "wsgi.py"},
            capture_output=True,
            timeout=60,
        )
        return probe.returncode == 0

    def _start_email_worker(self) -> None:
        with open(self.workdir / "worker.log", "ab") as log:
            self.worker = subprocess.Popen(
                [sys.executable, "-m", "flask", "worker"],
                cwd=REPO_ROOT,
                env={**self.app_environment(), "FLASK_APP": "wsgi.py"},
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def render_nginx_config(self) -> str:
        servers = "\n".join(
            f"        server {LOOPBACK}:{member.port} max_fails=1 fail_timeout=2s;"
            for member in self.members
        )
        # As root, nginx would switch its workers to `nobody`, who cannot write the temp dirs.
        user = "user root;" if os.geteuid() == 0 else ""
        return Template(TEMPLATE.read_text()).substitute(
            user_directive=user,
            prefix=self.nginx_prefix,
            upstream_servers=servers,
            listen=f"{LOOPBACK}:{self.port}",
        )

    def _start_nginx(self) -> None:
        self.nginx_prefix.mkdir(parents=True, exist_ok=True)
        config = self.nginx_prefix / "nginx.conf"
        config.write_text(self.render_nginx_config())
        command = [_executable("nginx"), "-p", str(self.nginx_prefix), "-c", str(config)]
        checked = subprocess.run(
            [*command, "-t", "-e", str(self.nginx_prefix / "error.log")],
            capture_output=True,
            text=True,
            timeout=30,
        )
        if checked.returncode != 0:
            raise RuntimeError(f"nginx refused its configuration:\n{checked.stderr}")
        with open(self.nginx_prefix / "stderr.log", "ab") as log:
            self.nginx = subprocess.Popen(
                [*command, "-e", str(self.nginx_prefix / "error.log")],
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        wait_until_answering(self.url + "/health/live", 30, self.nginx)
