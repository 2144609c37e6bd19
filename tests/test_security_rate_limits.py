"""Rate limits: per IP on /api/ and auth, per account on failed logins, shared through Redis,
falling back to process memory while Redis is away and returning to it afterwards."""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
import redis
from flask.testing import FlaskClient

from app.middlewares.rate_limits import STORAGE_KEY_PREFIX, rate_limit_rejected
from tests.conftest import (
    STRONG_PASSWORD,
    assert_error_envelope,
    bearer,
    login,
    register,
    unique_email,
)
from tests.processes import free_port

GENEROUS = "1000 per hour"


def _limited_app(make_app, **limits: str):
    settings = {
        "RATE_LIMIT_DEFAULT": GENEROUS,
        "RATE_LIMIT_AUTH": GENEROUS,
        "RATE_LIMIT_LOGIN_FAILURES": GENEROUS,
        **limits,
    }
    return make_app(**settings)


def _assert_rate_limited(response) -> dict:
    body = assert_error_envelope(response, 429, "rate_limited")
    assert int(response.headers["Retry-After"]) > 0
    for name in ("RateLimit-Limit", "RateLimit-Remaining", "RateLimit-Reset"):
        assert name in response.headers and f"X-{name}" in response.headers
    assert response.headers["RateLimit-Remaining"] == "0"
    return body


def _from(ip: str) -> dict:
    return {"environ_base": {"REMOTE_ADDR": ip}}


def test_the_default_limit_applies_per_client_ip_across_the_api(make_app, redis_url):
    client = _limited_app(make_app, REDIS_URL=redis_url, RATE_LIMIT_DEFAULT="3 per hour")
    client = client.test_client()
    for path in ("/api/v1/users/me", "/api/v1/nowhere-but-counted", "/api/v1/users/me"):
        client.get(path, **_from("192.0.2.1"))
    response = client.get("/api/v1/users/me", **_from("192.0.2.1"))
    body = _assert_rate_limited(response)
    assert "3 per 1 hour" in body["message"]
    assert response.headers["RateLimit-Limit"] == "3"
    assert 0 < int(response.headers["RateLimit-Reset"]) <= 3601
    # Another client is not affected.
    assert client.get("/api/v1/users/me", **_from("192.0.2.2")).status_code == 401


def test_a_successful_response_carries_ratelimit_headers_but_no_retry_after(make_app, redis_url):
    client = _limited_app(make_app, REDIS_URL=redis_url, RATE_LIMIT_AUTH="5 per hour")
    response = register(client.test_client())
    assert response.status_code == 201
    assert response.headers["RateLimit-Limit"] == "5"
    assert response.headers["RateLimit-Remaining"] == "4"
    assert "Retry-After" not in response.headers
    assert "X-Steadfast-Limiter-Retry-After" not in response.headers
    for name in ("RateLimit-Limit", "RateLimit-Remaining", "RateLimit-Reset"):
        assert len(response.headers.getlist(name)) == 1, name


def test_ratelimit_headers_a_view_wrote_are_replaced_not_repeated(make_app, redis_url):
    app = _limited_app(make_app, REDIS_URL=redis_url, RATE_LIMIT_DEFAULT="7 per hour")

    @app.get("/api/v1/_test/own-ratelimit-header")
    def own_ratelimit_header() -> tuple[dict, int, dict]:
        return {"ok": True}, 200, {"ratelimit-limit": "999"}

    response = app.test_client().get("/api/v1/_test/own-ratelimit-header")
    assert response.status_code == 200
    assert response.headers.getlist("RateLimit-Limit") == ["7"]
    assert response.headers.getlist("RateLimit-Remaining") == ["6"]
    assert 0 < int(response.headers["RateLimit-Reset"]) <= 3601


def test_register_and_login_share_the_auth_limit_per_ip(make_app, redis_url):
    client = _limited_app(make_app, REDIS_URL=redis_url, RATE_LIMIT_AUTH="3 per hour")
    client = client.test_client()
    email = unique_email()
    assert register(client, email).status_code == 201
    assert login(client, email).status_code == 200
    assert login(client, email).status_code == 200
    _assert_rate_limited(login(client, email))
    _assert_rate_limited(register(client))
    # Other endpoints only count against the default limit.
    assert client.get("/api/v1/users/me").status_code == 401


def test_auth_rate_limit_is_keyed_by_the_client_ip(make_app, redis_url):
    app = _limited_app(make_app, REDIS_URL=redis_url, RATE_LIMIT_AUTH="1 per hour")
    client = app.test_client()
    assert login(client, unique_email()).status_code == 401
    _assert_rate_limited(login(client, unique_email()))
    other = client.post(
        "/api/v1/auth/login",
        json={"email": unique_email(), "password": "whatever-it-is"},
        **_from("192.0.2.50"),
    )
    assert other.status_code == 401


def test_failed_logins_are_limited_per_account_even_across_ips(make_app, redis_url):
    app = _limited_app(
        make_app, REDIS_URL=redis_url, RATE_LIMIT_LOGIN_FAILURES="3 per hour", TRUSTED_PROXIES="1"
    )
    client = app.test_client()
    email = unique_email()
    assert register(client, email).status_code == 201

    def attempt(password: str, ip: str, address: str = email):
        return client.post(
            "/api/v1/auth/login",
            json={"email": address, "password": password},
            headers={"X-Forwarded-For": ip},
        )

    # Successful logins do not count; only 401s do.
    assert attempt(STRONG_PASSWORD, "198.51.100.1").status_code == 200
    for number in range(3):
        assert attempt("wrong password", f"198.51.100.{10 + number}").status_code == 401
    # The account is now locked for the window, whatever the IP, case or spacing.
    _assert_rate_limited(attempt("wrong password", "198.51.100.99"))
    _assert_rate_limited(attempt(STRONG_PASSWORD, "198.51.100.98", f"  {email.upper()} "))
    # Other accounts are untouched.
    assert attempt("wrong password", "198.51.100.99", unique_email()).status_code == 401


def test_validation_errors_do_not_count_as_failed_logins(make_app, redis_url):
    app = _limited_app(make_app, REDIS_URL=redis_url, RATE_LIMIT_LOGIN_FAILURES="1 per hour")
    client = app.test_client()
    email = unique_email()
    assert register(client, email).status_code == 201
    for _ in range(3):
        response = client.post("/api/v1/auth/login", json={"email": email})
        assert response.status_code == 422
    assert login(client, email).status_code == 200


@pytest.mark.parametrize("path", ["/health", "/health/live", "/health/ready", "/metrics"])
def test_health_and_metrics_are_never_rate_limited(make_app, redis_url, path):
    app = _limited_app(make_app, REDIS_URL=redis_url, RATE_LIMIT_DEFAULT="1 per hour")
    if not any(rule.rule == path for rule in app.url_map.iter_rules()):
        # Until the monitoring endpoints exist, a stand-in proves the exemption by path.
        app.add_url_rule(path, f"stand_in_{path}", lambda: {"status": "ok"})
    client = app.test_client()
    for _ in range(3):
        response = client.get(path)
        assert response.status_code != 429
        assert "RateLimit-Limit" not in response.headers


def test_cors_preflights_are_not_counted(make_app, redis_url):
    app = _limited_app(
        make_app,
        REDIS_URL=redis_url,
        RATE_LIMIT_DEFAULT="1 per hour",
        CORS_ORIGINS="https://app.example",
    )
    client = app.test_client()
    preflight = {"Origin": "https://app.example", "Access-Control-Request-Method": "POST"}
    for _ in range(3):
        assert client.options("/api/v1/users", headers=preflight).status_code == 204
    assert client.get("/api/v1/users/me").status_code == 401


def test_each_rejection_is_signalled_for_the_metrics_counter(make_app, redis_url):
    app = _limited_app(make_app, REDIS_URL=redis_url, RATE_LIMIT_AUTH="1 per hour")
    seen: list[dict] = []

    def record(sender, **details):
        seen.append({"app": sender, **details})

    rate_limit_rejected.connect(record)
    try:
        client = app.test_client()
        login(client, unique_email())
        login(client, unique_email())
    finally:
        rate_limit_rejected.disconnect(record)
    assert seen == [{"app": app, "scope": "auth", "limit": "1 per 1 hour"}]


def test_limits_are_counted_in_redis(make_app, redis_url):
    app = _limited_app(make_app, REDIS_URL=redis_url)
    login(app.test_client(), unique_email())
    keys = redis.Redis.from_url(redis_url).keys(f"{STORAGE_KEY_PREFIX}*")
    assert keys, "no rate-limit counter was written to Redis"


def test_two_app_instances_on_one_redis_share_a_limit(make_app, redis_url):
    first = _limited_app(make_app, REDIS_URL=redis_url, RATE_LIMIT_AUTH="2 per hour")
    second = _limited_app(make_app, REDIS_URL=redis_url, RATE_LIMIT_AUTH="2 per hour")
    assert login(first.test_client(), unique_email()).status_code == 401
    assert login(second.test_client(), unique_email()).status_code == 401
    _assert_rate_limited(login(first.test_client(), unique_email()))
    _assert_rate_limited(login(second.test_client(), unique_email()))


def test_two_app_instances_on_one_redis_share_a_revocation(make_app, redis_url):
    first = make_app(REDIS_URL=redis_url).test_client()
    second = make_app(REDIS_URL=redis_url).test_client()
    email = unique_email()
    register(first, email)
    tokens = login(first, email).get_json()["data"]
    assert second.get("/api/v1/users/me", headers=bearer(tokens["access_token"])).status_code == 200
    response = first.post(
        "/api/v1/auth/logout",
        json={"refresh_token": tokens["refresh_token"]},
        headers=bearer(tokens["access_token"]),
    )
    assert response.status_code == 204
    assert_error_envelope(
        second.get("/api/v1/users/me", headers=bearer(tokens["access_token"])), 401, "unauthorized"
    )


# --- Redis away -----------------------------------------------------------------------


def _fallback_warnings(log_records: list[dict]) -> list[dict]:
    return [
        record
        for record in log_records
        if record.get("level") == "WARNING" and "falling back to in-memory" in record["message"]
    ]


def test_with_redis_unreachable_limits_fall_back_to_memory_and_requests_succeed(
    make_app, log_records
):
    dead_redis = f"redis://127.0.0.1:{free_port()}/0"
    app = _limited_app(make_app, REDIS_URL=dead_redis, RATE_LIMIT_AUTH="2 per hour")
    client = app.test_client()
    # Unknown accounts: the login path touches no other Redis-backed part.
    assert login(client, unique_email()).status_code == 401
    assert login(client, unique_email()).status_code == 401
    # Still limited, now counted in this process.
    _assert_rate_limited(login(client, unique_email()))
    assert len(_fallback_warnings(log_records)) == 1


@contextmanager
def _own_redis_server(port: int) -> Iterator[subprocess.Popen]:
    """A throw-away redis-server on `port` (never the shared one), killed on exit."""
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.fail("redis-server is not installed (.ci/run installs it)")
    process = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    client = redis.Redis(port=port, socket_connect_timeout=0.2)
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                client.ping()
                break
            except redis.ConnectionError:
                if time.monotonic() > deadline or process.poll() is not None:
                    raise
                time.sleep(0.05)
        yield process
    finally:
        client.close()
        process.kill()
        process.wait(timeout=10)


@pytest.mark.slow
def test_limits_survive_a_redis_outage_and_return_to_redis_when_it_is_back(make_app, log_records):
    port = free_port()
    url = f"redis://127.0.0.1:{port}/0"
    app = _limited_app(make_app, REDIS_URL=url, RATE_LIMIT_DEFAULT="1000 per hour")
    client = app.test_client()

    def counters() -> list[bytes]:
        return redis.Redis(port=port).keys(f"{STORAGE_KEY_PREFIX}*")

    with _own_redis_server(port):
        assert client.get("/api/v1/users/me").status_code == 401
        assert counters(), "the limiter did not count in Redis"

    # Redis is gone: every request still gets its normal answer, counted in memory.
    for _ in range(3):
        assert client.get("/api/v1/users/me").status_code == 401
    assert len(_fallback_warnings(log_records)) == 1

    with _own_redis_server(port):
        # flask-limiter probes the storage with a back-off (1, 2, 4 ... s): poll until the
        # counters reappear in the fresh Redis, with a deadline.
        deadline = time.monotonic() + 20
        while not counters():
            assert time.monotonic() < deadline, "the limiter never returned to Redis"
            assert client.get("/api/v1/users/me").status_code == 401
            time.sleep(0.1)
        assert any("recovered" in record["message"] for record in log_records)


def test_a_hostile_login_body_cannot_push_the_limiter_off_redis(make_app, redis_url, log_records):
    app = _limited_app(make_app, REDIS_URL=redis_url)
    client = app.test_client()
    for body in (b"[" * 100_000 + b"]" * 100_000, b'{"email": "\\ud800"}', b'{"email": 1e999}'):
        response = client.post(
            "/api/v1/auth/login", data=body, headers={"Content-Type": "application/json"}
        )
        assert 400 <= response.status_code < 500
    assert _fallback_warnings(log_records) == []


def test_a_503_keeps_its_own_retry_after(make_app, redis_url):
    from app.errors import ServiceUnavailableError

    app = _limited_app(make_app, REDIS_URL=redis_url)

    @app.get("/api/v1/_test/unavailable")
    def unavailable() -> None:
        raise ServiceUnavailableError(headers={"Retry-After": "5"})

    response = app.test_client().get("/api/v1/_test/unavailable")
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "5"
    assert "X-Steadfast-Limiter-Retry-After" not in response.headers


def test_rate_limit_login_failures_is_validated_like_the_other_limits():
    from app.config import ConfigError, load_settings

    with pytest.raises(ConfigError, match="RATE_LIMIT_LOGIN_FAILURES"):
        load_settings({"APP_ENV": "test", "RATE_LIMIT_LOGIN_FAILURES": "lots"})
    settings = load_settings({"APP_ENV": "test"})
    assert settings.rate_limit_login_failures == "5 per 15 minutes"


def test_another_blueprint_can_share_the_auth_limit_with_the_decorator(make_app, redis_url):
    from app.middlewares.rate_limits import apply_route_limits, auth_rate_limit

    app = _limited_app(make_app, REDIS_URL=redis_url, RATE_LIMIT_AUTH="2 per hour")

    @auth_rate_limit
    def password_reset_stand_in() -> tuple:
        return {"success": True, "data": None}, 202

    app.add_url_rule(
        "/api/v1/_test/password-reset", view_func=password_reset_stand_in, methods=["POST"]
    )
    apply_route_limits(app)
    apply_route_limits(app)  # binding twice must not count twice
    client = app.test_client()
    assert client.post("/api/v1/_test/password-reset").status_code == 202
    assert login(client, unique_email()).status_code == 401
    _assert_rate_limited(client.post("/api/v1/_test/password-reset"))
    _assert_rate_limited(login(client, unique_email()))


# --- Round trips ----------------------------------------------------------------------


def test_headers_show_the_window_this_request_left_in_redis(make_app, redis_url):
    client = _limited_app(make_app, REDIS_URL=redis_url, RATE_LIMIT_DEFAULT="5 per hour")
    client = client.test_client()
    client.get("/api/v1/users/me")
    response = client.get("/api/v1/users/me")
    assert response.headers["RateLimit-Remaining"] == "3"
    assert response.headers["X-RateLimit-Remaining"] == "3"
    (key,) = redis.Redis.from_url(redis_url).keys(f"{STORAGE_KEY_PREFIX}*")
    ttl = redis.Redis.from_url(redis_url).ttl(key)
    assert ttl - 1 <= int(response.headers["RateLimit-Reset"]) <= ttl + 2
    assert abs(int(response.headers["X-RateLimit-Reset"]) - (time.time() + ttl)) <= 2


def test_failed_logins_counted_by_another_instance_are_seen_by_the_next_request(
    make_app, redis_url
):
    first = _limited_app(make_app, REDIS_URL=redis_url, RATE_LIMIT_LOGIN_FAILURES="3 per hour")
    second = _limited_app(make_app, REDIS_URL=redis_url, RATE_LIMIT_LOGIN_FAILURES="3 per hour")
    email = unique_email()
    assert register(first.test_client(), email).status_code == 201
    client = first.test_client()
    # Each request reads its window afresh: nothing this app saw earlier is reused.
    assert login(client, email, "wrong password").status_code == 401
    assert login(client, email, "wrong password").status_code == 401
    assert login(second.test_client(), email, "wrong password").status_code == 401
    _assert_rate_limited(login(client, email))


def _app_commands(port: int, send) -> tuple[object, list[str]]:
    """The response of `send()` and the Redis commands the app sent for it (MONITOR)."""
    # MONITOR echoes every command from the moment it starts; the marker's ECHO ends the list.
    marker = redis.Redis(port=port)
    marker.ping()  # connected before MONITOR starts, so only its ECHO is seen
    with redis.Redis(port=port).monitor() as monitor:
        response = send()
        marker.echo("end-of-request")
        commands = []
        while (command := monitor.next_command())["command"] != "ECHO end-of-request":
            commands.append(command)
    marker.close()
    return response, [c["command"] for c in commands if c["client_type"] != "lua"]


@pytest.fixture
def client_on_own_redis(make_app) -> Iterator[tuple[FlaskClient, int]]:
    """A limited app's client and the port of its throw-away redis-server: MONITOR there sees
    this test's commands only."""
    port = free_port()
    app = _limited_app(make_app, REDIS_URL=f"redis://127.0.0.1:{port}/0")
    with _own_redis_server(port):
        yield app.test_client(), port


@pytest.mark.slow
def test_a_limited_request_costs_one_redis_round_trip_for_its_limit_and_headers(
    client_on_own_redis,
):
    client, port = client_on_own_redis
    client.get("/api/v1/users/me")  # loads the script into this fresh Redis
    response, commands = _app_commands(port, lambda: client.get("/api/v1/users/me"))
    assert response.status_code == 401
    assert response.headers["RateLimit-Remaining"] == "998"
    assert [command.split()[0] for command in commands] == ["EVALSHA"], commands


@pytest.mark.slow
def test_an_authenticated_request_checks_revocation_within_the_rate_limit_round_trip(
    client_on_own_redis,
):
    client, port = client_on_own_redis
    email = unique_email()
    assert register(client, email).status_code == 201
    pair = login(client, email).get_json()["data"]
    access, refresh = pair["access_token"], pair["refresh_token"]

    def me():
        return client.get("/api/v1/users/me", headers=bearer(access))

    response, commands = _app_commands(port, me)
    assert response.status_code == 200
    [script_call] = commands  # one round trip: the limit's hit, the revocation keys with it
    assert script_call.startswith("EVALSHA")
    assert "steadfast:tokens:revoked:" in script_call and "steadfast:tokens:family:" in script_call
    assert response.headers["RateLimit-Remaining"].isdigit()

    logout = client.post(
        "/api/v1/auth/logout", headers=bearer(access), json={"refresh_token": refresh}
    )
    assert logout.status_code == 204
    # The revoked token is refused by the answer that came with the limiter's script.
    response, commands = _app_commands(port, me)
    assert_error_envelope(response, 401, "unauthorized")
    assert len(commands) == 1 and commands[0].startswith("EVALSHA")


def test_a_revoked_family_is_refused_through_the_read_along(make_app, redis_url):
    app = _limited_app(make_app, REDIS_URL=redis_url)
    client = app.test_client()
    email = unique_email()
    assert register(client, email).status_code == 201
    first = login(client, email).get_json()["data"]
    rotated = client.post("/api/v1/auth/refresh", json={"refresh_token": first["refresh_token"]})
    assert rotated.status_code == 200
    new_access = rotated.get_json()["data"]["access_token"]
    assert client.get("/api/v1/users/me", headers=bearer(new_access)).status_code == 200
    # Reusing the spent refresh token revokes its whole family, access tokens included.
    reused = client.post("/api/v1/auth/refresh", json={"refresh_token": first["refresh_token"]})
    assert reused.status_code == 401
    refused = client.get("/api/v1/users/me", headers=bearer(new_access))
    assert_error_envelope(refused, 401, "unauthorized")


def test_without_redis_for_the_limiter_the_token_store_is_asked_as_before(make_app, redis_url):
    # Memory limits (no REDIS_URL): nothing rides along, the (memory) store answers itself.
    app = _limited_app(make_app, REDIS_URL="")
    client = app.test_client()
    email = unique_email()
    assert register(client, email).status_code == 201
    access = login(client, email).get_json()["data"]["access_token"]
    assert client.get("/api/v1/users/me", headers=bearer(access)).status_code == 200
    assert client.post("/api/v1/auth/logout", headers=bearer(access)).status_code == 204
    refused = client.get("/api/v1/users/me", headers=bearer(access))
    assert_error_envelope(refused, 401, "unauthorized")


def test_each_ratelimit_header_is_written_once_by_the_one_header_hook(make_app, redis_url):
    from flask_limiter import Limiter

    app = _limited_app(make_app, REDIS_URL=redis_url, RATE_LIMIT_DEFAULT="9 per hour")
    hooks = app.after_request_funcs[None]
    stock_writer = Limiter._Limiter__inject_headers
    assert not [hook for hook in hooks if getattr(hook, "func", None) is stock_writer]
    # First in the list: it runs after every other after-request hook.
    assert hooks[0] == app.extensions["steadfast_limiter"]._write_ratelimit_headers

    before = int(time.time())
    response = app.test_client().get("/api/v1/users/me")
    assert response.status_code == 401
    for name in ("Limit", "Remaining", "Reset"):
        assert len(response.headers.getlist(f"RateLimit-{name}")) == 1, name
        assert len(response.headers.getlist(f"X-RateLimit-{name}")) == 1, name
    assert response.headers["X-RateLimit-Limit"] == response.headers["RateLimit-Limit"] == "9"
    assert response.headers["X-RateLimit-Remaining"] == "8"
    reset_at = int(response.headers["X-RateLimit-Reset"])
    assert before < reset_at <= int(time.time()) + 3601
    assert abs(int(response.headers["RateLimit-Reset"]) - (reset_at - int(time.time()))) <= 1
    assert "Retry-After" not in response.headers


def test_a_retry_after_already_on_a_429_counts_when_it_is_later(make_app, redis_url):
    from werkzeug.http import http_date

    from app.middlewares.rate_limits import _retry_at

    now = time.time()
    assert _retry_at(None, now) == 0
    assert _retry_at("120", now) == int(now) + 120
    assert _retry_at(http_date(int(now) + 7200), now) == int(now) + 7200
    assert _retry_at("soon", now) == 0

    app = _limited_app(make_app, REDIS_URL=redis_url, RATE_LIMIT_DEFAULT="1 per minute")

    @app.get("/api/v1/_test/busy")
    def busy() -> tuple[dict, int, dict]:
        return {"busy": True}, 429, {"Retry-After": "7200"}

    client = app.test_client()
    # Within the limit, the view's own 429 keeps its later Retry-After (one header, not two).
    response = client.get("/api/v1/_test/busy")
    assert response.headers.getlist("Retry-After") in (["7200"], ["7199"])
    # Beyond it, the limiter's 429 names the end of its window.
    limited = client.get("/api/v1/_test/busy")
    _assert_rate_limited(limited)
    assert 0 < int(limited.headers["Retry-After"]) <= 61


def test_a_storage_error_while_writing_the_headers_moves_the_limiter_to_memory(
    make_app, redis_url, log_records, monkeypatch
):
    from flask_limiter import RequestLimit

    app = _limited_app(make_app, REDIS_URL=redis_url, RATE_LIMIT_DEFAULT="5 per hour")
    stock_window = RequestLimit.window
    failures = iter([redis.ConnectionError("Redis went away")])

    def window_failing_once(request_limit: RequestLimit):
        failure = next(failures, None)
        if failure is not None:
            raise failure
        return stock_window.fget(request_limit)

    monkeypatch.setattr(RequestLimit, "window", property(window_failing_once))
    response = app.test_client().get("/api/v1/users/me")
    assert response.status_code == 401
    assert len(_fallback_warnings(log_records)) == 1
    assert response.headers["RateLimit-Limit"] == "5"
    assert response.headers.getlist("X-RateLimit-Limit") == ["5"]


def test_a_flask_limiter_without_its_known_header_hook_fails_at_start_up(make_app, monkeypatch):
    from app.middlewares import rate_limits

    monkeypatch.setattr(rate_limits, "_STOCK_HEADER_WRITER", object())
    with pytest.raises(RuntimeError, match="header hook was not found"):
        make_app()
