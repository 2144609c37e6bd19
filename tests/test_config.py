"""Configuration: SPEC section 5, validated once, every problem reported together."""

from __future__ import annotations

import subprocess
import sys

import pytest

from app.config import DEV_JWT_SECRET, ConfigError, load_settings, parse_duration, parse_size
from app.server import per_process_state_warning
from tests.conftest import REPO_ROOT

PRODUCTION_OK = {
    "APP_ENV": "production",
    "DATABASE_URL": "postgresql://app@db.internal:5432/steadfast",
    "REDIS_URL": "redis://cache.internal:6379/0",
    "JWT_SECRET": "x" * 40,
    "CORS_ORIGINS": "https://app.example.com",
}


def test_development_runs_on_embedded_defaults():
    settings = load_settings({"APP_ENV": "development"})
    assert settings.database_url.startswith("sqlite:///")
    assert settings.redis_url is None
    assert settings.jwt_secret == DEV_JWT_SECRET and settings.jwt_secret_is_dev_default
    assert settings.access_token_ttl_s == 15 * 60
    assert settings.refresh_token_ttl_s == 7 * 86400
    assert settings.port == 8000
    assert settings.max_content_length == 1024 * 1024
    assert settings.rate_limit_default == "100 per 15 minutes"
    assert settings.rate_limit_auth == "10 per minute"
    assert (settings.loop_lag_sample_ms, settings.loop_lag_report_s) == (20, 10)
    assert settings.loop_lag_threshold_ms == 50
    assert settings.log_format == "pretty"


def test_one_worker_by_default_without_redis_two_with_it_and_an_explicit_count_wins():
    # Without Redis, revocations and rate limits live in each worker's memory (make run).
    assert load_settings({"APP_ENV": "development"}).web_concurrency == 1
    assert load_settings(PRODUCTION_OK).web_concurrency == 2
    with_redis = {"APP_ENV": "development", "REDIS_URL": "redis://127.0.0.1:6379/0"}
    assert load_settings(with_redis).web_concurrency == 2
    explicit = {"APP_ENV": "development", "WEB_CONCURRENCY": "3"}
    assert load_settings(explicit).web_concurrency == 3


def test_several_workers_without_redis_are_warned_about_and_nothing_else_is():
    lone = load_settings({"APP_ENV": "development"})
    several = load_settings({"APP_ENV": "development", "WEB_CONCURRENCY": "2"})
    shared = load_settings({**PRODUCTION_OK, "WEB_CONCURRENCY": "4"})
    assert per_process_state_warning(lone) is None
    assert per_process_state_warning(shared) is None
    warning = per_process_state_warning(several)
    assert warning is not None and "REDIS_URL" in warning and "logout" in warning


def test_production_with_everything_set_is_accepted():
    settings = load_settings(PRODUCTION_OK)
    assert settings.is_production and settings.log_format == "json"
    assert settings.database_url == "postgresql+psycopg://app@db.internal:5432/steadfast"
    assert settings.cors_origins == ("https://app.example.com",)


@pytest.mark.parametrize("scheme", ["postgres://", "postgresql://"])
def test_both_postgres_url_schemes_select_the_psycopg_driver(scheme):
    settings = load_settings({**PRODUCTION_OK, "DATABASE_URL": f"{scheme}u@h/db"})
    assert settings.database_url == "postgresql+psycopg://u@h/db"


def test_broken_production_reports_every_problem_at_once():
    with pytest.raises(ConfigError) as caught:
        load_settings(
            {
                "APP_ENV": "production",
                "JWT_SECRET": "short",
                "CORS_ORIGINS": "*",
                "PORT": "eighty",
                "JWT_EXPIRY": "forever",
            }
        )
    message = str(caught.value)
    for expected in (
        "DATABASE_URL: required",
        "REDIS_URL: required",
        "JWT_SECRET: must be at least 32 characters",
        "CORS_ORIGINS: '*' is refused",
        "PORT:",
        "JWT_EXPIRY:",
    ):
        assert expected in message
    assert len(caught.value.problems) == 6


@pytest.mark.parametrize("app_env", [None, "prod", ""])
def test_missing_or_unknown_app_env_is_refused(app_env):
    environ = {} if app_env is None else {"APP_ENV": app_env}
    with pytest.raises(ConfigError, match="APP_ENV"):
        load_settings(environ)


def test_production_requires_a_jwt_secret():
    environ = {k: v for k, v in PRODUCTION_OK.items() if k != "JWT_SECRET"}
    with pytest.raises(ConfigError, match="JWT_SECRET: required"):
        load_settings(environ)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("RATE_LIMIT_AUTH", "lots"),
        ("MAX_CONTENT_LENGTH", "big"),
        ("LOG_FORMAT", "xml"),
        ("LOG_LEVEL", "LOUD"),
        ("EMAIL_BACKEND", "pigeon"),
        ("TRUSTED_PROXIES", "-1"),
        ("WEB_CONCURRENCY", "0"),
        ("LOOP_LAG_SAMPLE_MS", "x"),
        ("CORS_ORIGINS", "not-an-origin"),
        ("REDIS_URL", "http://cache"),
    ],
)
def test_each_invalid_value_is_named(name, value):
    with pytest.raises(ConfigError, match=name):
        load_settings({"APP_ENV": "development", name: value})


def test_smtp_backend_needs_an_smtp_url():
    with pytest.raises(ConfigError, match="SMTP_URL: required"):
        load_settings({"APP_ENV": "development", "EMAIL_BACKEND": "smtp"})


@pytest.mark.parametrize(
    ("raw", "seconds"), [("30s", 30), ("15m", 900), ("12h", 43200), ("7d", 604800)]
)
def test_durations(raw, seconds):
    assert parse_duration(raw) == seconds


@pytest.mark.parametrize(
    ("raw", "size"), [("1048576", 1048576), ("512k", 524288), ("1MiB", 1048576)]
)
def test_sizes(raw, size):
    assert parse_size(raw) == size


def _broken_production_environment() -> dict[str, str]:
    return {
        "PATH": "/usr/bin:/bin",
        "APP_ENV": "production",
        "JWT_SECRET": "short",
        "CORS_ORIGINS": "*",
    }


def _run_with_broken_production_environment(*command: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        command,
        cwd=REPO_ROOT,
        env=_broken_production_environment(),
        capture_output=True,
        text=True,
        timeout=30,
    )


def test_gunicorn_master_refuses_to_start_before_forking_workers():
    gunicorn = REPO_ROOT / ".venv" / "bin" / "gunicorn"
    executable = str(gunicorn) if gunicorn.exists() else "gunicorn"
    result = _run_with_broken_production_environment(
        executable, "-c", "gunicorn.conf.py", "wsgi:app"
    )
    assert result.returncode != 0
    assert "refusing to start" in result.stderr
    assert "DATABASE_URL: required" in result.stderr
    assert "JWT_SECRET: must be at least 32 characters" in result.stderr
    assert "Booting worker" not in result.stderr + result.stdout


def test_wsgi_import_fails_with_the_readable_message():
    result = _run_with_broken_production_environment(sys.executable, "-c", "import wsgi")
    assert result.returncode != 0
    assert "Invalid configuration (4 problem(s))" in result.stderr


def test_the_project_dotenv_file_is_read_and_the_environment_wins(tmp_path, monkeypatch):
    import app.config as config_module

    dotenv = tmp_path / ".env"
    dotenv.write_text("APP_ENV=development\nPORT=9123\nJWT_EXPIRY=5m\n")
    monkeypatch.setattr(config_module, "DOTENV_FILE", dotenv)
    monkeypatch.delenv("APP_ENV", raising=False)
    monkeypatch.delenv("PORT", raising=False)
    monkeypatch.setenv("JWT_EXPIRY", "7m")
    settings = load_settings()
    assert settings.app_env == "development" and settings.port == 9123
    assert settings.access_token_ttl_s == 7 * 60
