# syntax=docker/dockerfile:1
# Steadfast image: gunicorn serving the app as an unprivileged user.
#   docker build -t steadfast .
#   docker run --rm --env-file prod.env steadfast flask db upgrade   # migrations: a separate step
#   docker run -d --env-file prod.env -p 127.0.0.1:8000:8000 --stop-timeout 35 steadfast
# See docs/deployment.md for the whole procedure.

# Both stages share one base, so the virtualenv built in the first runs in the second.
ARG PYTHON_IMAGE=python:3.11-slim-bookworm

# Build stage: a virtualenv with the pinned runtime dependencies only (no test tools).
FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
COPY requirements.txt /tmp/requirements.txt
# Every package is pinned, transitive ones included; `pip check` fails the build if the list
# is inconsistent. Wheels only, except psycopg's C module, built here against Debian's libpq
# (psycopg's advice for production: libpq and OpenSSL then get the OS's security updates, and a
# worker maps one OpenSSL instead of two; docs/performance.md, finding 28). The compiler and
# headers stay in this stage.
RUN apt-get update \
 && apt-get install -y --no-install-recommends gcc libpq-dev \
 && rm -rf /var/lib/apt/lists/*
RUN python -m venv /opt/venv \
 && /opt/venv/bin/pip install --only-binary=:all: --no-binary=psycopg-c -r /tmp/requirements.txt \
 && /opt/venv/bin/pip check

# Runtime stage: the virtualenv, the code and the libpq it links to, nothing else.
FROM ${PYTHON_IMAGE} AS runtime
RUN apt-get update \
 && apt-get install -y --no-install-recommends libpq5 \
 && rm -rf /var/lib/apt/lists/*
# PYTHONOPTIMIZE=2 (python -OO): no docstrings or asserts in memory, ~6 MiB less per worker
# (docs/performance.md, finding 23). Nothing relies on them: the OpenAPI summaries are given
# to @blp.doc, not read from docstrings.
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONOPTIMIZE=2 \
    PYTHONUNBUFFERED=1 \
    PSYCOPG_IMPL=c \
    FLASK_APP=wsgi.py \
    APP_ENV=production \
    PORT=8000
RUN groupadd --system --gid 10001 steadfast \
 && useradd --system --uid 10001 --gid steadfast --no-create-home \
            --home-dir /nonexistent --shell /usr/sbin/nologin steadfast
COPY --from=build /opt/venv /opt/venv
WORKDIR /app
# Code owned by root and read-only for the app user: a compromised worker cannot rewrite it.
COPY migrations ./migrations
COPY app ./app
COPY wsgi.py gunicorn.conf.py ./
# Bytecode compiled at build time, since the app user cannot write it at run time; at the
# optimisation level the processes run with (pip compiled the virtualenv's for level 0).
RUN python -OO -m compileall -q /app /opt/venv/lib
USER steadfast:steadfast
EXPOSE 8000
# Liveness only (no database or Redis call), so a dependency outage does not get a healthy
# container restarted; readiness (/health/ready) is for the load balancer. No curl in a slim
# image: the interpreter that is already there makes the request.
HEALTHCHECK --interval=15s --timeout=3s --start-period=20s --retries=3 \
  CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/health/live' % os.environ.get('PORT', '8000'), timeout=2)"]
# gunicorn is PID 1 (exec form) and receives docker's SIGTERM itself: in-flight requests end
# within GRACEFUL_TIMEOUT (give `docker stop` longer: --stop-timeout 35). CMD, not ENTRYPOINT,
# so that `flask db upgrade` (or `flask users create-admin`) runs in the same image.
STOPSIGNAL SIGTERM
CMD ["gunicorn", "-c", "gunicorn.conf.py", "wsgi:app"]
