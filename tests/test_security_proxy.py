"""Proxy trust for real: client -> nginx -> gunicorn, read back from the rate-limit keys.

The client connects from 127.0.0.3 and sends a forged X-Forwarded-For; nginx appends the
address it saw. The IP the app rate-limits by must be 127.0.0.3 with TRUSTED_PROXIES=1 and
nginx's own 127.0.0.1 with 0 -- never the forged one.
"""

from __future__ import annotations

import http.client
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import redis

from app.middlewares.rate_limits import STORAGE_KEY_PREFIX
from tests.processes import free_port, gunicorn_server, run_flask

pytestmark = pytest.mark.slow

CLIENT_ADDRESS = "127.0.0.3"
FORGED_ADDRESS = "6.6.6.6"

NGINX_CONF = """
daemon off;
master_process off;
worker_processes 1;
pid {prefix}/nginx.pid;
error_log {prefix}/error.log warn;
events {{ worker_connections 64; }}
http {{
    access_log off;
    client_body_temp_path {prefix}/body;
    proxy_temp_path {prefix}/proxy;
    fastcgi_temp_path {prefix}/fastcgi;
    uwsgi_temp_path {prefix}/uwsgi;
    scgi_temp_path {prefix}/scgi;
    server {{
        listen 127.0.0.1:{port};
        location / {{
            proxy_pass http://127.0.0.1:{upstream_port};
            proxy_set_header Host $host;
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
            proxy_set_header X-Forwarded-Proto $scheme;
        }}
    }}
}}
"""


@contextmanager
def nginx_proxy(upstream_url: str, prefix: Path) -> Iterator[int]:
    """nginx in the foreground on a free loopback port, proxying to `upstream_url`."""
    binary = shutil.which("nginx") or (
        "/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None
    )
    if binary is None:
        pytest.fail("nginx is not installed (.ci/run installs it)")
    port = free_port()
    upstream_port = int(upstream_url.rsplit(":", 1)[1])
    config = prefix / "nginx.conf"
    config.write_text(NGINX_CONF.format(prefix=prefix, port=port, upstream_port=upstream_port))
    process = subprocess.Popen(
        [binary, "-p", str(prefix), "-e", str(prefix / "error.log"), "-c", str(config)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 15
        while True:
            try:
                http.client.HTTPConnection("127.0.0.1", port, timeout=1).connect()
                break
            except OSError as error:
                if process.poll() is not None or time.monotonic() > deadline:
                    log = (prefix / "error.log").read_text(errors="replace")
                    raise RuntimeError(f"nginx did not come up: {log}") from error
                time.sleep(0.05)
        yield port
    finally:
        process.terminate()
        process.wait(timeout=10)


def _get_from_client_address(port: int, path: str) -> int:
    connection = http.client.HTTPConnection(
        "127.0.0.1", port, timeout=10, source_address=(CLIENT_ADDRESS, 0)
    )
    try:
        connection.request("GET", path, headers={"X-Forwarded-For": FORGED_ADDRESS})
        return connection.getresponse().status
    finally:
        connection.close()


@pytest.mark.parametrize(
    ("trusted_proxies", "expected_ip"), [("1", CLIENT_ADDRESS), ("0", "127.0.0.1")]
)
def test_the_rate_limit_key_is_the_address_nginx_saw_only_when_nginx_is_trusted(
    tmp_path, redis_url, trusted_proxies, expected_ip
):
    environment = {
        **os.environ,
        "APP_ENV": "development",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'proxied.db'}",
        "REDIS_URL": redis_url,
        "TRUSTED_PROXIES": trusted_proxies,
        "WEB_CONCURRENCY": "1",
    }
    assert run_flask(environment, "db", "upgrade").returncode == 0
    with (
        gunicorn_server(environment, tmp_path / "gunicorn.log") as server,
        nginx_proxy(server.base_url, tmp_path) as port,
    ):
        assert _get_from_client_address(port, "/api/v1/users/me") == 401

    keys = [key.decode() for key in redis.Redis.from_url(redis_url).keys(f"{STORAGE_KEY_PREFIX}*")]
    assert any(f"/{expected_ip}/global/" in key for key in keys), keys
    assert not any(FORGED_ADDRESS in key for key in keys), keys
