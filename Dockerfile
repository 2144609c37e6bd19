# syntax=docker/dockerfile:1
# Build stage: compile wheels for the pinned runtime dependencies only.
FROM python:3.11-slim AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /build
COPY requirements.txt .
RUN python -m venv /opt/venv \
 && /opt/venv/bin/pip install --upgrade pip \
 && /opt/venv/bin/pip install -r requirements.txt

# Runtime stage: the venv and the code, run as an unprivileged user.
FROM python:3.11-slim AS runtime
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    APP_ENV=production \
    PORT=8000
RUN groupadd --system --gid 10001 steadfast \
 && useradd --system --uid 10001 --gid steadfast --home-dir /app --shell /usr/sbin/nologin steadfast
COPY --from=build /opt/venv /opt/venv
WORKDIR /app
COPY --chown=steadfast:steadfast app ./app
COPY --chown=steadfast:steadfast migrations ./migrations
COPY --chown=steadfast:steadfast wsgi.py gunicorn.conf.py ./
USER steadfast
EXPOSE 8000
# Liveness only: no dependency calls, so a database outage does not get the container killed.
HEALTHCHECK --interval=15s --timeout=3s --start-period=20s --retries=3 \
  CMD python -c "import os, urllib.request; urllib.request.urlopen(f'http://127.0.0.1:{os.environ.get(\"PORT\", \"8000\")}/health/live', timeout=2)"
# Migrations are a separate, deliberate step: docker run IMAGE flask --app wsgi db upgrade
CMD ["gunicorn", "-c", "gunicorn.conf.py", "wsgi:app"]
