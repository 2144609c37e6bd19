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
# from all restarting at once. Each recycle costs a cold start (~0.6 s of CPU, during which
# the other workers carry the load): at 2000 a worker serving 500 req/s restarted every 4 s
# (benchmarks: p99 of /health/live 772 -> 86 ms when raised to 20000).
max_requests = 20000
max_requests_jitter = 2000
# X-Forwarded-* are believed only when a proxy hop is configured (nginx on the same host).
forwarded_allow_ips = "127.0.0.1,::1" if settings.trusted_proxies > 0 else ""
proxy_allow_ips = forwarded_allow_ips
# Our own access line (with request id and user id) replaces gunicorn's.
accesslog = None
logger_class = "app.gunicorn_logger.GunicornLogger"
# gunicorn's runtime control socket defaults to one path per user: several instances on a
# host (tests, the local cluster) would fight over it, and nothing here uses it.
control_socket_disable = True
