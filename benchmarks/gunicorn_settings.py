"""The server settings of the project's gunicorn.conf.py that every benchmark target shares."""

from __future__ import annotations

import runpy
from pathlib import Path
from typing import Any

# How requests are served; app hooks, logging and bind are deliberately not in this list.
SHARED_SERVER_SETTINGS = (
    "workers",
    "threads",
    "worker_class",
    "worker_connections",
    "timeout",
    "graceful_timeout",
    "keepalive",
    "backlog",
    "max_requests",
    "max_requests_jitter",
    "preload_app",
    "forwarded_allow_ips",
    "proxy_allow_ips",
    "secure_scheme_headers",
    "worker_tmp_dir",
    "control_socket_disable",
)


def server_settings(config_path: Path) -> dict[str, Any]:
    """The shared settings as the project's config computes them from the current environment."""
    namespace = runpy.run_path(str(config_path))
    return {name: namespace[name] for name in SHARED_SERVER_SETTINGS if name in namespace}
