"""Logs: one access line per request, structured errors, and never a secret."""

from __future__ import annotations

import json
import logging

import pytest

from app.config import load_settings
from app.logs import _json_line, configure_logging, redact_text
from tests.conftest import STRONG_PASSWORD, bearer, login, register, unique_email


def test_one_access_line_per_request_with_its_fields(client, registered_user, log_records):
    response = client.get("/api/v1/users/me", headers=bearer(registered_user["access_token"]))
    access = [r for r in log_records if r.get("access")]
    assert len(access) == 1
    line = access[0]
    assert line["request_id"] == response.headers["X-Request-ID"]
    assert (line["method"], line["path"], line["status"]) == ("GET", "/api/v1/users/me", 200)
    assert line["user_id"] == registered_user["id"]
    assert line["ip"] == "127.0.0.1"
    assert isinstance(line["duration_ms"], float)


def test_no_password_or_token_appears_in_any_log_line(client, log_records):
    email = unique_email()
    register(client, email, STRONG_PASSWORD)
    tokens = login(client, email).get_json()["data"]
    client.get("/api/v1/users/me", headers=bearer(tokens["access_token"]))
    login(client, email, "wrong " + STRONG_PASSWORD)
    client.get("/api/v1/users/me", headers=bearer(tokens["refresh_token"]))
    everything = "\n".join(json.dumps(record) for record in log_records)
    assert len(log_records) >= 5
    for secret in (STRONG_PASSWORD, tokens["access_token"], tokens["refresh_token"]):
        assert secret not in everything
    for fragment in (tokens["access_token"][-20:], tokens["refresh_token"].split(".")[1][:30]):
        assert fragment not in everything


def test_secrets_in_free_text_are_redacted():
    text = redact_text(
        'Authorization: Bearer eyJhbGciOi.eyJzdWIiOiIx.sig password="hunter2 2" '
        "token=abc123 postgresql://app:s3cret@db/app"
    )
    for secret in ("eyJhbGciOi", "hunter2", "abc123", "s3cret"):
        assert secret not in text


@pytest.mark.parametrize(
    "text",
    [
        "eyJhbGciOi.eyJzdWIiOiIx.sig",
        "BASIC dXNlcjpwYXNz",
        "bearer abc.def",
        "PassWord: 'hunter2'",
        "'Token'=abc123",
        "Secret = xyz",
        "AUTHORIZATION=abc",
        "redis://user:s3cret@cache:6379/0",
        # Not ASCII: the quick check folds case as the substitutions do ("ſ" is an "s", "K"
        # a "k"), where lower() would leave those letters alone.
        "café token=abc123",
        "paſsword=hunter2",
        "toKen=abc123",
    ],
)
def test_every_secret_pattern_passes_the_quick_check_that_skips_plain_text(text):
    # The quick check only decides whether the substitutions run: it must never miss a secret.
    assert redact_text(text) != text
    assert redact_text("GET /api/v1/users/me 200 203.0.113.7 wrk/4.1") == (
        "GET /api/v1/users/me 200 203.0.113.7 wrk/4.1"
    )


def test_stdlib_loggers_are_routed_through_loguru(app, log_records):
    logging.getLogger("gunicorn.error").warning("from gunicorn with token=abc123")
    routed = [r for r in log_records if r["logger"] == "gunicorn.error"]
    assert routed and routed[0]["level"] == "WARNING"
    assert "abc123" not in routed[0]["message"]


def test_production_logs_are_one_json_object_per_line(capsys):
    settings = load_settings(
        {
            "APP_ENV": "production",
            "DATABASE_URL": "postgresql://u@h/db",
            "REDIS_URL": "redis://h:6379/0",
            "JWT_SECRET": "s" * 40,
        }
    )
    configure_logging(settings)
    from loguru import logger

    logger.bind(user_id="u1", password="hunter2").warning("hello {}", "world")
    lines = [line for line in capsys.readouterr().out.splitlines() if line.strip()]
    record = json.loads(lines[-1])
    assert record["message"] == "hello world" and record["level"] == "WARNING"
    assert record["user_id"] == "u1" and record["password"] == "[REDACTED]"
    assert callable(_json_line)
