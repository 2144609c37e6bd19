"""gunicorn settings, all from the environment; the configuration is validated here, in the
master, before any worker forks, so a broken deployment never starts serving."""

import sys

from app.config import ConfigError, load_settings
from app.logs import configure_logging

try:
    settings = load_settings()
except ConfigError as error:
    sys.stderr.write(f"steadfast: refusing to start.\n{error}\n")
    sys.exit(1)

configure_logging(settings)

bind = f"0.0.0.0:{settings.port}"
workers = settings.web_concurrency
threads = settings.gunicorn_threads
worker_class = "gthread"
timeout = settings.gunicorn_timeout
graceful_timeout = settings.graceful_timeout
keepalive = 5
# Recycle workers now and then so a slow leak cannot grow forever; jitter keeps them
# from all restarting at once.
max_requests = 2000
max_requests_jitter = 200
# X-Forwarded-* are believed only when a proxy hop is configured (nginx on the same host).
forwarded_allow_ips = "127.0.0.1,::1" if settings.trusted_proxies > 0 else ""
proxy_allow_ips = forwarded_allow_ips
# Our own access line (with request id and user id) replaces gunicorn's.
accesslog = None
logger_class = "app.gunicorn_logger.GunicornLogger"
# gunicorn's runtime control socket defaults to one path per user: several instances on a
# host (tests, the local cluster) would fight over it, and nothing here uses it.
control_socket_disable = True


# Server hooks: monitoring (metrics directory, loop-lag sampler, readiness on SIGTERM, crash
# and timeout reporting). The work is in app/monitoring/gunicorn_hooks.py.
from app.monitoring import gunicorn_hooks  # noqa: E402

gunicorn_hooks.prepare_master()


def on_starting(server):
    gunicorn_hooks.on_starting(server)


def post_fork(server, worker):
    gunicorn_hooks.post_fork(server, worker, settings)


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
