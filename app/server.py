"""What gunicorn.conf.py needs beyond plain values: derived settings and fork safety."""

from __future__ import annotations

import gc
import os
from collections.abc import Mapping
from typing import Any

from flask import Flask

from app.config import Settings
from app.malloc import release_free_memory

# Recycle a worker after this many requests (plus up to the jitter) so a slow leak cannot
# grow forever; the jitter keeps the workers from all restarting at the same moment. Each
# recycle is a cold start (0.5-1.2 s of CPU, while the other workers carry the load), so the
# count is set against the rate a worker serves: 2000 restarted a worker at 500 req/s every
# 4 s (p99 of the 404 route 772 -> 86 ms when raised), and 20000 one answering probes at
# 2,500 req/s every 8 s (docs/performance.md, findings 2 and 34). Memory stays flat under
# load (tests/test_soak.py), so the net is for slow leaks in libraries: at 100 bytes a
# request, 100000 requests bound one to ~10 MiB.
MAX_REQUESTS = 100_000
MAX_REQUESTS_JITTER = 10_000
# Idle keep-alive connections are closed after this many seconds. nginx's upstream
# keepalive_timeout (deploy/nginx.conf) is shorter, so nginx never reuses a connection
# gunicorn is closing (which would fail a POST with a 502).
KEEPALIVE_S = 5
# The heartbeat file of each worker is fchmod-ed every second; on a disk-backed or overlay
# filesystem (Docker) that call can block, and gunicorn then kills healthy workers.
SHARED_MEMORY_DIR = "/dev/shm"
LOOPBACK_PROXIES = "127.0.0.1,::1"


def trusted_forwarder_ips(settings: Settings, environ: Mapping[str, str] = os.environ) -> str:
    """The peers gunicorn believes X-Forwarded-Proto (and SCRIPT_NAME) from.

    None when no proxy is trusted: the headers then come from the client. With a proxy, the
    loopback addresses (nginx on the same host) unless FORWARDED_ALLOW_IPS (gunicorn's own
    variable) names the proxy's addresses, as in a container network.
    """
    if settings.trusted_proxies <= 0:
        return ""
    return environ.get("FORWARDED_ALLOW_IPS", "").strip() or LOOPBACK_PROXIES


def per_process_state_warning(settings: Settings) -> str | None:
    """What to warn about when several workers run without Redis; None when one process or
    Redis keeps revocations, single-use tokens and rate limits whole."""
    if settings.web_concurrency <= 1 or settings.redis_url:
        return None
    return (
        f"WEB_CONCURRENCY={settings.web_concurrency} without REDIS_URL: revoked tokens, used "
        "single-use tokens and rate limits are kept per worker, so a logout holds only in the "
        "worker that served it; set REDIS_URL, or run one worker (the default without it)"
    )


def heartbeat_dir() -> str | None:
    return SHARED_MEMORY_DIR if os.path.isdir(SHARED_MEMORY_DIR) else None


def dispose_inherited_connections(worker: Any) -> None:
    """In a freshly forked worker, forget the database connections pooled by the master.

    Only a preloaded app (`--preload`) exists before the fork; without preload each worker
    builds its own app and engine, and there is nothing to do. `close=False` matters: the
    sockets are shared with the master, and closing them here would end the master's
    sessions too (SQLAlchemy, "Using Connection Pools with Multiprocessing or os.fork()").
    Redis needs nothing: redis-py's pool notices the new pid and reconnects by itself.
    """
    app = getattr(worker.app, "callable", None)
    if not isinstance(app, Flask):
        return
    from app.extensions import db

    with app.app_context():
        for engine in db.engines.values():
            engine.dispose(close=False)


def freeze_live_objects() -> None:
    """Collect, then move every object alive now out of the garbage collector's sight.

    Called twice in a worker's life. In the master before each fork (gunicorn.conf.py's
    pre_fork): a worker starts with the master's memory shared copy-on-write, and a full
    collection in the worker writes to every object it scans, copying their pages into it.
    In the worker once the app is loaded (post_worker_init): its ~150,000 start-up objects
    (SQLAlchemy, marshmallow, Flask, the OpenAPI spec) live as long as the process, and each
    full collection walked them all, one every ~3,000 requests, 130-330 ms long, stalling
    every thread of the worker. Frozen objects are never scanned; request garbage is
    collected as before. Collecting first keeps garbage out of the frozen set.

    Then the heap that start-up freed goes back to the OS (glibc's malloc_trim): in the master
    it would otherwise be resident in every worker forked from it, and in a worker it is
    memory no request reuses soon (0-2 MiB per worker, docs/performance.md, finding 21).
    """
    gc.collect()
    gc.freeze()
    release_free_memory()
