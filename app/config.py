"""Settings: every environment variable of SPEC section 5, parsed and validated once."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from dotenv import dotenv_values
from environs import Env, EnvValidationError
from marshmallow.validate import Range

ENVIRONMENTS = ("development", "test", "staging", "production")
DEPLOYED_ENVIRONMENTS = ("staging", "production")
MIN_JWT_SECRET_LENGTH = 32
# Deliberately public: development and test must run with no set-up, and the
# value is logged loudly so nobody mistakes it for a real secret.
DEV_JWT_SECRET = "steadfast-development-secret-do-not-use-in-production"
PROJECT_ROOT = Path(__file__).resolve().parent.parent
INSTANCE_DIR = PROJECT_ROOT / "instance"
DOTENV_FILE = PROJECT_ROOT / ".env"

_DURATION_PATTERN = re.compile(r"^\s*(\d+)\s*([smhd])\s*$")
_DURATION_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_RATE_LIMIT_PATTERN = re.compile(
    r"^\s*\d+\s*(/|per)\s*(\d+\s*)?(second|minute|hour|day|month|year)s?\s*$", re.IGNORECASE
)
_SIZE_PATTERN = re.compile(r"^\s*(\d+)\s*([kmg]i?b?|b)?\s*$", re.IGNORECASE)
_SIZE_UNITS = {"": 1, "b": 1, "k": 1024, "m": 1024**2, "g": 1024**3}


class ConfigError(Exception):
    """Raised with every configuration problem found, so they can be fixed in one go."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        lines = "\n".join(f"  - {problem}" for problem in problems)
        super().__init__(f"Invalid configuration ({len(problems)} problem(s)):\n{lines}")


@dataclass(frozen=True)
class Settings:
    app_env: str
    port: int
    database_url: str
    redis_url: str | None
    jwt_secret: str
    jwt_secret_is_dev_default: bool
    access_token_ttl_s: int
    refresh_token_ttl_s: int
    cors_origins: tuple[str, ...]
    rate_limit_default: str
    rate_limit_auth: str
    rate_limit_login_failures: str
    trusted_proxies: int
    max_content_length: int
    log_level: str
    log_format: str
    email_backend: str
    smtp_url: str | None
    email_from: str
    loop_lag_sample_ms: int
    loop_lag_report_s: int
    loop_lag_threshold_ms: int
    slow_query_ms: int
    health_timeout_ms: int
    memory_threshold_mb: int
    metrics_token: str | None
    web_concurrency: int
    gunicorn_threads: int
    gunicorn_timeout: int
    graceful_timeout: int
    # Where the emailed links point (the client app's pages); unset: emails carry the bare token.
    frontend_url: str | None = None
    version: str = "0.1.0"
    extra: Mapping[str, Any] = field(default_factory=dict)

    tracing: TracingSettings = field(default_factory=lambda: TracingSettings())

    @property
    def is_deployed(self) -> bool:
        return self.app_env in DEPLOYED_ENVIRONMENTS

    @property
    def is_production(self) -> bool:
        return self.app_env == "production"

    def with_overrides(self, **changes: Any) -> Settings:
        return replace(self, **changes)


class _MappingEnv(Env):
    """An environs reader over an explicit mapping, so tests need not touch os.environ."""

    def __init__(self, source: Mapping[str, str]):
        super().__init__(eager=False)
        self._source = source

    def _get_value(self, env_key: str, default: Any) -> Any:
        return self._source.get(env_key, default)


def default_web_concurrency(redis_url: str | None) -> int:
    """Workers when WEB_CONCURRENCY is unset: 2, or 1 without Redis.

    Without Redis, revoked tokens, used single-use tokens and rate-limit counters live in each
    worker's memory (app/services/token_store.py): with two workers a logged-out token would
    still be accepted by the other one. One process keeps them whole; `make run` relies on it.
    """
    return 2 if redis_url else 1


def parse_duration(raw: str) -> int:
    """Seconds in a duration such as `30s`, `15m`, `12h` or `7d`."""
    match = _DURATION_PATTERN.match(raw)
    if not match:
        raise ValueError(f"{raw!r} is not a duration like 30s, 15m, 12h or 7d")
    seconds = int(match.group(1)) * _DURATION_UNITS[match.group(2)]
    if seconds <= 0:
        raise ValueError("a duration must be positive")
    return seconds


def parse_size(raw: str) -> int:
    """Bytes in a size such as `1048576`, `512k`, `1MiB`."""
    match = _SIZE_PATTERN.match(raw)
    if not match:
        raise ValueError(f"{raw!r} is not a size like 1048576, 512k or 1MiB")
    unit = (match.group(2) or "").lower()[:1]
    return int(match.group(1)) * _SIZE_UNITS[unit]


def normalise_database_url(url: str) -> str:
    """Accept Heroku-style `postgres://` and pick the psycopg 3 driver for PostgreSQL."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def _checked(problems: list[str], name: str, parse: Any, raw: str) -> Any:
    try:
        return parse(raw)
    except ValueError as error:
        problems.append(f"{name}: {error}")
        return None


def load_settings(environ: Mapping[str, str] | None = None) -> Settings:
    """Read and validate the configuration; raise ConfigError listing every problem.

    With no mapping the process environment is used, after reading `.env` when present.
    """
    if environ is None:
        # The project's .env (beside wsgi.py), never one found by walking up from elsewhere;
        # variables already in the environment win.
        from_file = dotenv_values(DOTENV_FILE) if DOTENV_FILE.is_file() else {}
        environ = {**{k: v for k, v in from_file.items() if v is not None}, **os.environ}
    env = _MappingEnv(environ)
    problems: list[str] = []

    app_env = env.str("APP_ENV", None)
    port = env.int("PORT", 8000, validate=Range(min=1, max=65535))
    database_url = env.str("DATABASE_URL", None)
    redis_url = env.str("REDIS_URL", None)
    jwt_secret = env.str("JWT_SECRET", None)
    jwt_expiry = env.str("JWT_EXPIRY", "15m")
    jwt_refresh_expiry = env.str("JWT_REFRESH_EXPIRY", "7d")
    cors_origins = env.list("CORS_ORIGINS", [])
    rate_limit_default = env.str("RATE_LIMIT_DEFAULT", "100 per 15 minutes")
    rate_limit_auth = env.str("RATE_LIMIT_AUTH", "10 per minute")
    rate_limit_login_failures = env.str("RATE_LIMIT_LOGIN_FAILURES", "5 per 15 minutes")
    trusted_proxies = env.int("TRUSTED_PROXIES", 0, validate=Range(min=0, max=10))
    max_content_length = env.str("MAX_CONTENT_LENGTH", str(1024 * 1024))
    log_level = env.str("LOG_LEVEL", "INFO").upper()
    log_format = env.str("LOG_FORMAT", None)
    email_backend = env.str("EMAIL_BACKEND", "console").lower()
    smtp_url = env.str("SMTP_URL", None)
    email_from = env.str("EMAIL_FROM", "Steadfast <no-reply@localhost>")
    loop_lag_sample_ms = env.int("LOOP_LAG_SAMPLE_MS", 20, validate=Range(min=1, max=10_000))
    loop_lag_report_s = env.int("LOOP_LAG_REPORT_S", 10, validate=Range(min=1, max=3600))
    loop_lag_threshold_ms = env.int("LOOP_LAG_THRESHOLD_MS", 50, validate=Range(min=1))
    slow_query_ms = env.int("SLOW_QUERY_MS", 200, validate=Range(min=0))
    # A probe may wait at most 1 s (SPEC section 4): /health must answer while a dependency hangs.
    health_timeout_ms = env.int("HEALTH_TIMEOUT_MS", 1000, validate=Range(min=10, max=1000))
    memory_threshold_mb = env.int("MEMORY_THRESHOLD_MB", 512, validate=Range(min=16))
    metrics_token = env.str("METRICS_TOKEN", None)
    web_concurrency = env.int("WEB_CONCURRENCY", None, validate=Range(min=1, max=64))
    gunicorn_threads = env.int("GUNICORN_THREADS", 4, validate=Range(min=1, max=256))
    gunicorn_timeout = env.int("GUNICORN_TIMEOUT", 30, validate=Range(min=1))
    graceful_timeout = env.int("GRACEFUL_TIMEOUT", 30, validate=Range(min=1))
    frontend_url = env.str("FRONTEND_URL", None)

    try:
        env.seal()
    except EnvValidationError as error:
        for name, messages in error.error_messages.items():
            problems.append(f"{name}: {'; '.join(str(m) for m in messages)}")

    if app_env is None:
        problems.append("APP_ENV: required (one of " + ", ".join(ENVIRONMENTS) + ")")
    elif app_env not in ENVIRONMENTS:
        problems.append(f"APP_ENV: {app_env!r} is not one of " + ", ".join(ENVIRONMENTS))
    deployed = app_env in DEPLOYED_ENVIRONMENTS

    if database_url:
        if deployed and not database_url.startswith(("postgres://", "postgresql")):
            problems.append("DATABASE_URL: must be a PostgreSQL URL in staging/production")
        database_url = normalise_database_url(database_url)
    elif deployed:
        problems.append("DATABASE_URL: required in staging/production")
    else:
        database_file = INSTANCE_DIR / f"steadfast-{app_env or 'development'}.db"
        database_url = f"sqlite:///{database_file}"

    if redis_url and not redis_url.startswith(("redis://", "rediss://", "unix://")):
        problems.append("REDIS_URL: must start with redis://, rediss:// or unix://")
    if deployed and not redis_url:
        problems.append("REDIS_URL: required in staging/production")
    if web_concurrency is None:
        web_concurrency = default_web_concurrency(redis_url)

    jwt_secret_is_dev_default = False
    if jwt_secret is None or jwt_secret == "":
        if deployed:
            problems.append("JWT_SECRET: required in staging/production")
        jwt_secret, jwt_secret_is_dev_default = DEV_JWT_SECRET, True
    elif deployed and len(jwt_secret) < MIN_JWT_SECRET_LENGTH:
        problems.append(
            f"JWT_SECRET: must be at least {MIN_JWT_SECRET_LENGTH} characters "
            f"(got {len(jwt_secret)})"
        )

    access_ttl = _checked(problems, "JWT_EXPIRY", parse_duration, jwt_expiry)
    refresh_ttl = _checked(problems, "JWT_REFRESH_EXPIRY", parse_duration, jwt_refresh_expiry)
    if access_ttl and refresh_ttl and refresh_ttl <= access_ttl:
        problems.append("JWT_REFRESH_EXPIRY: must be longer than JWT_EXPIRY")

    tracing = load_tracing_settings(environ, problems)

    origins = tuple(origin.strip().rstrip("/") for origin in cors_origins or [] if origin.strip())
    if deployed and "*" in origins:
        problems.append("CORS_ORIGINS: '*' is refused in staging/production; list the origins")
    for origin in origins:
        if origin != "*" and not re.match(r"^https?://[^/\s]+$", origin):
            problems.append(f"CORS_ORIGINS: {origin!r} is not an origin like https://app.example")

    for name, value in (
        ("RATE_LIMIT_DEFAULT", rate_limit_default),
        ("RATE_LIMIT_AUTH", rate_limit_auth),
        ("RATE_LIMIT_LOGIN_FAILURES", rate_limit_login_failures),
    ):
        if value is not None and not all(
            _RATE_LIMIT_PATTERN.match(part) for part in value.split(";")
        ):
            problems.append(f"{name}: {value!r} is not a limit like '10 per minute'")

    max_body = _checked(problems, "MAX_CONTENT_LENGTH", parse_size, max_content_length or "")
    if max_body is not None and max_body < 1024:
        problems.append("MAX_CONTENT_LENGTH: must be at least 1024 bytes")

    if log_level not in ("TRACE", "DEBUG", "INFO", "SUCCESS", "WARNING", "ERROR", "CRITICAL"):
        problems.append(f"LOG_LEVEL: {log_level!r} is not a log level")
    if log_format is None:
        log_format = "json" if deployed else "pretty"
    elif log_format not in ("json", "pretty"):
        problems.append(f"LOG_FORMAT: {log_format!r} is not json or pretty")

    if email_backend not in ("console", "smtp"):
        problems.append(f"EMAIL_BACKEND: {email_backend!r} is not console or smtp")
    elif email_backend == "smtp" and not smtp_url:
        problems.append("SMTP_URL: required when EMAIL_BACKEND=smtp")
    if smtp_url and not smtp_url.startswith(("smtp://", "smtps://")):
        problems.append("SMTP_URL: must start with smtp:// or smtps://")

    if frontend_url and not re.match(r"^https?://[^\s?#]+$", frontend_url):
        problems.append(f"FRONTEND_URL: {frontend_url!r} is not a URL like https://app.example")

    if problems:
        raise ConfigError(problems)

    return Settings(
        app_env=app_env,
        port=port,
        database_url=database_url,
        redis_url=redis_url or None,
        jwt_secret=jwt_secret,
        jwt_secret_is_dev_default=jwt_secret_is_dev_default,
        tracing=tracing,
        access_token_ttl_s=access_ttl,
        refresh_token_ttl_s=refresh_ttl,
        cors_origins=origins,
        rate_limit_default=rate_limit_default,
        rate_limit_auth=rate_limit_auth,
        rate_limit_login_failures=rate_limit_login_failures,
        trusted_proxies=trusted_proxies,
        max_content_length=max_body,
        log_level=log_level,
        log_format=log_format,
        email_backend=email_backend,
        smtp_url=smtp_url or None,
        email_from=email_from,
        loop_lag_sample_ms=loop_lag_sample_ms,
        loop_lag_report_s=loop_lag_report_s,
        loop_lag_threshold_ms=loop_lag_threshold_ms,
        slow_query_ms=slow_query_ms,
        health_timeout_ms=health_timeout_ms,
        memory_threshold_mb=memory_threshold_mb,
        metrics_token=metrics_token or None,
        web_concurrency=web_concurrency,
        gunicorn_threads=gunicorn_threads,
        gunicorn_timeout=gunicorn_timeout,
        graceful_timeout=graceful_timeout,
        frontend_url=(frontend_url or "").rstrip("/") or None,
    )


# --- Tracing: the standard OpenTelemetry variables -----------------------------------------

TRACE_SAMPLERS = (
    "always_on",
    "always_off",
    "traceidratio",
    "parentbased_always_on",
    "parentbased_always_off",
    "parentbased_traceidratio",
)
TRACE_EXPORTERS = ("otlp", "console", "none")
_TRUE_FALSE = {"true": True, "false": False}


@dataclass(frozen=True)
class TracingSettings:
    """OpenTelemetry tracing; with `enabled` False nothing is installed at all."""

    enabled: bool = False
    service_name: str = "steadfast"
    exporter: str = "otlp"
    # The full URL spans are POSTed to (OTLP over HTTP with protobuf bodies).
    traces_endpoint: str | None = None
    sampler: str = "parentbased_always_on"
    sampler_arg: float = 1.0


def load_tracing_settings(environ: Mapping[str, str], problems: list[str]) -> TracingSettings:
    """Tracing is on when an OTLP endpoint (or the console exporter) is configured and the
    SDK is not disabled; the names and meanings are the OpenTelemetry specification's."""
    raw_disabled = environ.get("OTEL_SDK_DISABLED", "false").strip().lower() or "false"
    disabled = _TRUE_FALSE.get(raw_disabled)
    if disabled is None:
        problems.append(f"OTEL_SDK_DISABLED: {raw_disabled!r} is not true or false")

    exporter = environ.get("OTEL_TRACES_EXPORTER", "otlp").strip().lower() or "otlp"
    if exporter not in TRACE_EXPORTERS:
        problems.append(f"OTEL_TRACES_EXPORTER: {exporter!r} is not one of otlp, console, none")
    for name in ("OTEL_EXPORTER_OTLP_PROTOCOL", "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL"):
        protocol = environ.get(name, "").strip()
        if protocol and protocol != "http/protobuf":
            problems.append(f"{name}: only http/protobuf is supported (got {protocol!r})")

    endpoint = environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "").strip()
    endpoint_name = "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"
    if not endpoint:
        # The generic endpoint is a base URL: the HTTP exporter appends the signal's path.
        base = environ.get("OTEL_EXPORTER_OTLP_ENDPOINT", "").strip()
        endpoint = base.rstrip("/") + "/v1/traces" if base else ""
        endpoint_name = "OTEL_EXPORTER_OTLP_ENDPOINT"
    if endpoint and not re.match(r"^https?://[^/\s?#]+(/[^\s]*)?$", endpoint):
        problems.append(f"{endpoint_name}: {endpoint!r} is not a URL like http://collector:4318")

    service_name = environ.get("OTEL_SERVICE_NAME", "").strip() or "steadfast"

    sampler = environ.get("OTEL_TRACES_SAMPLER", "").strip().lower() or "parentbased_always_on"
    if sampler not in TRACE_SAMPLERS:
        known = ", ".join(TRACE_SAMPLERS)
        problems.append(f"OTEL_TRACES_SAMPLER: {sampler!r} is not one of {known}")
    sampler_arg = 1.0
    raw_arg = environ.get("OTEL_TRACES_SAMPLER_ARG", "").strip()
    if raw_arg and sampler.endswith("traceidratio"):
        try:
            sampler_arg = float(raw_arg)
        except ValueError:
            sampler_arg = -1.0
        if not 0.0 <= sampler_arg <= 1.0:
            problems.append(f"OTEL_TRACES_SAMPLER_ARG: {raw_arg!r} is not a ratio from 0 to 1")

    enabled = not disabled and (exporter == "console" or (exporter == "otlp" and bool(endpoint)))
    return TracingSettings(
        enabled=enabled,
        service_name=service_name,
        exporter=exporter,
        traces_endpoint=endpoint or None,
        sampler=sampler,
        sampler_arg=sampler_arg,
    )
