"""The app behind a real nginx running deploy/nginx.conf: the client's address survives."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import redis
import requests
from requests.adapters import HTTPAdapter

from app.middlewares.rate_limits import STORAGE_KEY_PREFIX
from tests.deploy_support import SteadyLoad, child_pids, wait_for, write_artifact
from tests.processes import REPO_ROOT, free_port, gunicorn_server
from tests.services import service_missing

pytestmark = pytest.mark.slow

NGINX_SITE = REPO_ROOT / "deploy" / "nginx.conf"
TEST_APP = "tests.apps.slow:app"
# The client connects from another loopback address than nginx uses towards gunicorn
# (127.0.0.1), so "the client's address" and "nginx's address" can be told apart.
CLIENT_ADDRESS = "127.0.0.2"
SPOOFED_ADDRESS = "203.0.113.66"


def installed(program: str) -> str:
    """The program's path; missing, the test is skipped (a failure under REQUIRE_SERVICES=1)."""
    path = shutil.which(program) or shutil.which(program, path="/usr/sbin:/sbin")
    if path is None:
        service_missing(program, FileNotFoundError(f"{program} is not installed (.ci/run adds it)"))
    return path


def render_site(upstream_port: int, http_port: int, https_port: int, workdir: Path) -> str:
    """deploy/nginx.conf with loopback ports, a test certificate and logs in `workdir`.

    Each replacement must apply exactly once: if the file changes shape, this fails loudly
    instead of silently testing something else.
    """
    site = NGINX_SITE.read_text()
    replacements = [
        ("server 127.0.0.1:8000 ", f"server 127.0.0.1:{upstream_port} "),
        ("    listen 80;\n", f"    listen 127.0.0.1:{http_port};\n"),
        ("    listen [::]:80;\n", ""),
        ("    listen 443 ssl http2;\n", f"    listen 127.0.0.1:{https_port} ssl http2;\n"),
        ("    listen [::]:443 ssl http2;\n", ""),
        ("/etc/letsencrypt/live/api.example.com/fullchain.pem", str(workdir / "cert.pem")),
        ("/etc/letsencrypt/live/api.example.com/privkey.pem", str(workdir / "key.pem")),
        ("/var/log/nginx/steadfast.access.log", str(workdir / "access.log")),
        ("/var/log/nginx/steadfast.error.log", str(workdir / "error.log")),
    ]
    for old, new in replacements:
        assert site.count(old) == 1, f"deploy/nginx.conf no longer has exactly one {old!r}"
        site = site.replace(old, new)
    return site


def main_config(workdir: Path) -> str:
    """The parts /etc/nginx/nginx.conf would hold, pointed at `workdir`, in the foreground."""
    user = "user root;\n" if os.geteuid() == 0 else ""
    temp_paths = "".join(
        f"    {kind}_temp_path {workdir / kind};\n"
        for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    return (
        f"{user}daemon off;\nworker_processes 1;\npid {workdir / 'nginx.pid'};\n"
        f"error_log {workdir / 'error.log'} warn;\n"
        "events { worker_connections 256; }\n"
        "http {\n    include /etc/nginx/mime.types;\n    access_log off;\n"
        f"{temp_paths}    include {workdir / 'steadfast.conf'};\n}}\n"
    )


def self_signed_certificate(workdir: Path) -> None:
    subprocess.run(
        [
            installed("openssl"), "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
            "-subj", "/CN=api.example.com",
            "-addext", "subjectAltName=DNS:api.example.com,IP:127.0.0.1",
            "-keyout", str(workdir / "key.pem"), "-out", str(workdir / "cert.pem"),
        ],
        check=True, capture_output=True, timeout=60,
    )  # fmt: skip


@dataclass
class RunningNginx:
    https_url: str
    http_url: str
    access_log: Path
    certificate: Path

    def access_entries(self) -> list[dict[str, Any]]:
        if not self.access_log.exists():
            return []
        return [json.loads(line) for line in self.access_log.read_text().splitlines() if line]


@contextmanager
def nginx_proxy(upstream_port: int, workdir: Path) -> Iterator[RunningNginx]:
    workdir.mkdir(parents=True, exist_ok=True)
    self_signed_certificate(workdir)
    http_port, https_port = free_port(), free_port()
    (workdir / "steadfast.conf").write_text(
        render_site(upstream_port, http_port, https_port, workdir)
    )
    config = workdir / "nginx.conf"
    config.write_text(main_config(workdir))
    command = [
        installed("nginx"),
        "-p",
        str(workdir),
        "-c",
        str(config),
        "-e",
        str(workdir / "error.log"),
    ]
    checked = subprocess.run([*command, "-t"], capture_output=True, text=True, timeout=30)
    assert checked.returncode == 0, checked.stderr
    process = subprocess.Popen(command, stderr=subprocess.PIPE, start_new_session=True)
    running = RunningNginx(
        f"https://127.0.0.1:{https_port}",
        f"http://127.0.0.1:{http_port}",
        workdir / "access.log",
        workdir / "cert.pem",
    )
    try:
        wait_for(lambda: _answers(running.http_url, process), "nginx to listen", deadline_s=20)
        yield running
    finally:
        process.send_signal(signal.SIGQUIT)  # graceful: finish requests, then exit
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=5)


def _answers(url: str, process: subprocess.Popen) -> bool:
    if process.poll() is not None:
        raise RuntimeError(f"nginx exited: {process.stderr.read().decode(errors='replace')}")
    try:
        requests.get(url, timeout=1, allow_redirects=False)
    except requests.ConnectionError:
        return False
    return True


class FromAddress(HTTPAdapter):
    """Connect from a chosen local address (here another loopback address than nginx's)."""

    def __init__(self, source_address: str):
        self.source_address = source_address
        super().__init__()

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        kwargs["source_address"] = (self.source_address, 0)
        super().init_poolmanager(*args, **kwargs)


def client_session(certificate: Path) -> requests.Session:
    session = requests.Session()
    session.mount("https://", FromAddress(CLIENT_ADDRESS))
    session.mount("http://", FromAddress(CLIENT_ADDRESS))
    # No environment: REQUESTS_CA_BUNDLE or a proxy variable would override the settings here.
    session.trust_env = False
    session.verify = str(certificate)  # the test's self-signed certificate, verified
    return session


def app_access_lines(logs: str, path: str) -> list[dict[str, Any]]:
    lines = []
    for line in logs.splitlines():
        if line.startswith("{") and '"access": true' in line:
            entry = json.loads(line)
            if entry["path"] == path:
                lines.append(entry)
    return lines


@contextmanager
def app_behind_nginx(
    tmp_path: Path, trusted_proxies: str, **extra: str
) -> Iterator[tuple[Any, RunningNginx]]:
    environment = {
        "APP_ENV": "development",
        "LOG_FORMAT": "json",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'served.db'}",
        "WEB_CONCURRENCY": "1",
        "TRUSTED_PROXIES": trusted_proxies,
        **extra,
    }
    with (
        gunicorn_server(environment, tmp_path / "gunicorn.log", app_module=TEST_APP) as server,
        nginx_proxy(int(server.base_url.rsplit(":", 1)[1]), tmp_path / "nginx") as nginx,
    ):
        yield server, nginx


def rate_limit_keys(redis_url: str) -> list[str]:
    client = redis.Redis.from_url(redis_url)
    try:
        return [key.decode() for key in client.keys(f"{STORAGE_KEY_PREFIX}*")]
    finally:
        client.close()


def test_behind_nginx_the_app_sees_logs_and_rate_limits_the_client_address_not_a_spoofed_one(
    tmp_path, redis_url
):
    with (
        app_behind_nginx(tmp_path, trusted_proxies="1", REDIS_URL=redis_url) as (server, nginx),
        client_session(nginx.certificate) as client,
    ):
        response = client.get(
            nginx.https_url + "/_test/whoami",
            headers={"X-Forwarded-For": SPOOFED_ADDRESS, "X-Forwarded-Prefix": "/evil"},
            timeout=10,
        )
        assert response.status_code == 200, response.text
        seen = response.json()["data"]
        # request.remote_addr is also the rate limiter's key: it must be the client.
        assert seen["remote_addr"] == CLIENT_ADDRESS
        assert seen["scheme"] == "https"
        assert seen["script_root"] == "", "a client's X-Forwarded-Prefix must not reach the app"
        request_id = response.headers["X-Request-ID"]

        [app_line] = wait_for(
            lambda: app_access_lines(server.logs(), "/_test/whoami"), "the app's access line"
        )
        assert app_line["ip"] == CLIENT_ADDRESS
        assert app_line["request_id"] == request_id
        nginx_line = wait_for(
            lambda: [e for e in nginx.access_entries() if e["uri"] == "/_test/whoami"],
            "nginx's access line",
        )[0]
        assert nginx_line["remote_addr"] == CLIENT_ADDRESS
        assert nginx_line["request_id"] == request_id
        assert SPOOFED_ADDRESS not in server.logs()

        # The rate limiter keys /api/ requests by the same address.
        me = client.get(
            nginx.https_url + "/api/v1/users/me",
            headers={"X-Forwarded-For": SPOOFED_ADDRESS},
            timeout=10,
        )
        assert me.status_code == 401
        keys = rate_limit_keys(redis_url)
        assert any(f"/{CLIENT_ADDRESS}/" in key for key in keys), keys
        assert not any(SPOOFED_ADDRESS in key for key in keys), keys


def test_without_a_trusted_proxy_forwarded_headers_are_ignored(tmp_path, redis_url):
    with (
        app_behind_nginx(tmp_path, trusted_proxies="0", REDIS_URL=redis_url) as (server, nginx),
        client_session(nginx.certificate) as client,
    ):
        response = client.get(
            nginx.https_url + "/_test/whoami",
            headers={"X-Forwarded-For": SPOOFED_ADDRESS},
            timeout=10,
        )
        seen = response.json()["data"]
        # The app believes only the TCP peer: nginx's address, not the client's or the spoof.
        assert seen["remote_addr"] == "127.0.0.1"
        assert seen["scheme"] == "http"
        assert SPOOFED_ADDRESS not in server.logs()
        [app_line] = wait_for(
            lambda: app_access_lines(server.logs(), "/_test/whoami"), "the app's access line"
        )
        assert app_line["ip"] == "127.0.0.1"
        client.get(nginx.https_url + "/api/v1/users/me", timeout=10)
        keys = rate_limit_keys(redis_url)
        assert any("/127.0.0.1/" in key for key in keys), keys
        assert not any(CLIENT_ADDRESS in key or SPOOFED_ADDRESS in key for key in keys), keys


def test_nginx_keeps_health_probes_out_of_its_log_and_answers_its_own_errors_in_json(tmp_path):
    with (
        app_behind_nginx(tmp_path, trusted_proxies="1") as (server, nginx),
        client_session(nginx.certificate) as client,
    ):
        for path in ("/health", "/health/live", "/health/ready"):
            client.get(nginx.https_url + path, timeout=10)
        client.get(nginx.https_url + "/_test/whoami", timeout=10)
        wait_for(
            lambda: any(e["uri"] == "/_test/whoami" for e in nginx.access_entries()),
            "nginx's access line",
        )
        assert not [e for e in nginx.access_entries() if e["uri"].startswith("/health")]

        too_large = client.post(
            nginx.https_url + "/api/v1/users",
            data=b"{" + b" " * (1024 * 1024 + 1) + b"}",
            headers={"Content-Type": "application/json", "X-Request-ID": "big-body-1"},
            timeout=30,
        )
        assert too_large.status_code == 413
        assert too_large.json() == {
            "success": False,
            "status": "error",
            "code": "payload_too_large",
            "message": "The request body is too large.",
            "request_id": "big-body-1",
        }
        assert too_large.headers["X-Request-ID"] == "big-body-1"

        redirected = client.get(
            nginx.http_url + "/api/v1/users/me", allow_redirects=False, timeout=10
        )
        assert redirected.status_code == 301
        assert redirected.headers["Location"].startswith("https://")

        server.process.send_signal(signal.SIGTERM)
        server.process.wait(timeout=30)
        down = client.get(nginx.https_url + "/api/v1/users/me", timeout=10)
        assert down.status_code == 503
        assert down.json()["code"] == "service_unavailable"
        assert re.fullmatch(r"[0-9a-f]{32}", down.json()["request_id"])


def test_hup_reloads_behind_nginx_fail_no_request_even_a_post_on_a_kept_alive_connection(
    tmp_path,
):
    # nginx never retries a POST that reached gunicorn, so this counts what a client would see
    # if nginx reused an upstream connection gunicorn was closing.
    with app_behind_nginx(tmp_path, trusted_proxies="1") as (server, nginx):
        load = SteadyLoad(
            nginx.https_url + "/_test/whoami",
            threads=4,
            method="POST",
            json_body={},
            new_session=lambda: client_session(nginx.certificate),
        )
        with load:
            load.wait_for_more(100)
            for _reload in range(2):
                before = child_pids(server.process.pid)
                server.process.send_signal(signal.SIGHUP)
                wait_for(
                    lambda before=before: not child_pids(server.process.pid) & before,
                    "the old worker to exit",
                )
                load.wait_for_more(100)
        figures = {"requests": load.total, "failed": len(load.failures)}
        write_artifact("deploy-hup-behind-nginx.json", {**figures, "sample": load.failures[:5]})
    assert load.failures == [], load.failures[:5]
