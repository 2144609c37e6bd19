"""gunicorn settings, all from the environment; the configuration is validated here, in the
master, before any worker forks, so a broken deployment never starts serving."""

import sys

from app.config import ConfigError, load_settings
from app.logs import configure_logging
from app.malloc import use_one_malloc_arena
from app.server import (
    KEEPALIVE_S,
    MAX_REQUESTS,
    MAX_REQUESTS_JITTER,
    dispose_inherited_connections,
    freeze_live_objects,
    heartbeat_dir,
    per_process_state_warning,
    trusted_forwarder_ips,
)

# Before any thread exists, so the workers inherit it: one malloc arena per process lets an
# idle worker return the argon2 buffer and freed request memory to the OS (app/malloc.py).
use_one_malloc_arena()

try:
    settings = load_settings()
except ConfigError as error:
    sys.stderr.write(f"steadfast: refusing to start.\n{error}\n")
    sys.exit(1)

configure_logging(settings)
if (warning := per_process_state_warning(settings)) is not None:
    from loguru import logger

    logger.warning(warning)

# All interfaces: in a container the port is published; on a host, firewall it so only the
# proxy reaches it (with TRUSTED_PROXIES > 0 the app believes X-Forwarded-For).
bind = f"0.0.0.0:{settings.port}"
workers = settings.web_concurrency
# Threads, not async workers: the app is synchronous; a thread waits on the database while the
# others serve. Connections per worker = threads, so the SQLAlchemy pool (5 + 5) covers them.
worker_class = "gthread"
threads = settings.gunicorn_threads
timeout = settings.gunicorn_timeout
graceful_timeout = settings.graceful_timeout
keepalive = KEEPALIVE_S
max_requests = MAX_REQUESTS
max_requests_jitter = MAX_REQUESTS_JITTER
worker_tmp_dir = heartbeat_dir()
# No preload: on HUP every new worker imports the new code. With `--preload` (in
# GUNICORN_CMD_ARGS) the post_fork hook drops the database connections inherited from the master.
preload_app = False

# Proxy headers: werkzeug's ProxyFix (app/middlewares/proxy.py) applies TRUSTED_PROXIES to
# X-Forwarded-For/Proto/Host/Port/Prefix. gunicorn's own check is kept consistent with it:
# nothing is believed when no proxy is trusted, and only the one scheme header nginx sets
# (so a client's X-Forwarded-Ssl cannot contradict it and turn its request into a 400).
forwarded_allow_ips = trusted_forwarder_ips(settings)
secure_scheme_headers = {"X-FORWARDED-PROTO": "https"}

# Our own access line (with request id and user id) replaces gunicorn's.
accesslog = None
logger_class = "app.gunicorn_logger.GunicornLogger"
# gunicorn's runtime control socket defaults to one path per user: several instances on a
# host (tests, the local cluster) would fight over it, and nothing here uses it.
control_socket_disable = True


# Server hooks: monitoring (metrics directory, loop-lag sampler, readiness on SIGTERM, crash
# and timeout reporting). The work is in app/monitoring/gunicorn_hooks.py.
from app.monitoring import gunicorn_hooks  # noqa: E402
from app.tracing import init_tracing_for_worker  # noqa: E402

gunicorn_hooks.prepare_master()


def on_starting(server):
    gunicorn_hooks.on_starting(server)


def pre_fork(server, worker):
    freeze_live_objects()


def post_fork(server, worker):
    dispose_inherited_connections(worker)
    gunicorn_hooks.post_fork(server, worker, settings)
    # After the fork: the span exporter's thread must live in the worker, not the master.
    init_tracing_for_worker(settings)


def post_worker_init(worker):
    gunicorn_hooks.post_worker_init(worker)


def worker_abort(worker):
    gunicorn_hooks.worker_abort(worker)


def worker_exit(server, worker):
    gunicorn_hooks.worker_exit(server, worker)


def child_exit(server, worker):
    gunicorn_hooks.child_exit(server, worker)


def on_exit(server):
    gunicorn_hooks.on_exit(server)
