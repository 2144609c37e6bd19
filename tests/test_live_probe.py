"""/health/live answered ahead of the Flask stack (app/monitoring/live_probe.py).

The probe's answer must be the stack's answer: same status, headers and body (but for the
request id and the body's clock), its own access line and request metrics, and any request
the stack could answer differently still goes to the stack.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from flask import Flask
from prometheus_client import REGISTRY

from app import create_app
from app.monitoring.live_probe import LIVE_PATH

BROWSER_ORIGIN = "https://app.example"
FORWARDED_HTTPS = {"X-Forwarded-Proto": "https", "X-Forwarded-For": "203.0.113.9"}
PER_REQUEST = {"X-Request-ID"}
CLOCK_FIELDS = {"timestamp", "uptime_s"}


@pytest.fixture
def make_proxied_app(postgresql_database_url: str, redis_url: str) -> Callable[[], Flask]:
    """Production settings (HSTS over HTTPS) behind one trusted proxy, CORS on, with a count of
    the requests that reached Flask's own hooks. These tests write no rows."""

    def build() -> Flask:
        app = create_app(
            {
                "APP_ENV": "production",
                "DATABASE_URL": postgresql_database_url,
                "REDIS_URL": redis_url,
                "JWT_SECRET": "s" * 64,
                "TRUSTED_PROXIES": "1",
                "CORS_ORIGINS": BROWSER_ORIGIN,
                "LOG_FORMAT": "pretty",
            }
        )
        app.config["flask_requests"] = 0

        def count_flask_request() -> None:
            app.config["flask_requests"] += 1

        app.before_request_funcs.setdefault(None, []).insert(0, count_flask_request)
        return app

    return build


@pytest.fixture
def proxied_app(make_proxied_app) -> Flask:
    return make_proxied_app()


def _headers_without(response, names: set[str]) -> dict[str, str]:
    return {name: value for name, value in response.headers.items() if name not in names}


def _body_without_clock(response) -> dict:
    return {key: value for key, value in response.get_json().items() if key not in CLOCK_FIELDS}


@pytest.mark.parametrize(
    "headers",
    [FORWARDED_HTTPS, {}, {**FORWARDED_HTTPS, "Origin": BROWSER_ORIGIN}],
    ids=["https", "http", "https-from-a-browser"],
)
def test_after_the_first_probe_the_stack_is_skipped_and_the_answer_is_the_same(
    proxied_app, headers
):
    client = proxied_app.test_client()
    through_stack = client.get(LIVE_PATH, headers=headers)
    assert proxied_app.config["flask_requests"] == 1

    answered_early = [client.get(LIVE_PATH, headers=headers) for _ in range(3)]
    head = client.head(LIVE_PATH, headers=headers)

    assert proxied_app.config["flask_requests"] == 1
    for response in answered_early:
        assert response.status_code == through_stack.status_code == 200
        assert _headers_without(response, PER_REQUEST) == _headers_without(
            through_stack, PER_REQUEST
        )
        assert _body_without_clock(response) == _body_without_clock(through_stack)
        assert set(response.get_json()) == set(through_stack.get_json())
        assert response.get_data().endswith(b"\n")
    # Every answer has its own request id.
    ids = {response.headers["X-Request-ID"] for response in [through_stack, *answered_early]}
    assert len(ids) == 4
    assert head.status_code == 200 and head.get_data() == b""
    assert head.headers["Content-Length"] == through_stack.headers["Content-Length"]
    assert ("Strict-Transport-Security" in head.headers) == ("X-Forwarded-Proto" in headers)


def test_headers_kept_from_a_probe_without_origin_are_those_the_stack_gives_with_one(
    make_proxied_app,
):
    from_browser = {**FORWARDED_HTTPS, "Origin": BROWSER_ORIGIN}
    stack_with_origin = make_proxied_app().test_client().get(LIVE_PATH, headers=from_browser)
    app = make_proxied_app()
    client = app.test_client()
    client.get(LIVE_PATH, headers=FORWARDED_HTTPS)

    early_with_origin = client.get(LIVE_PATH, headers=from_browser)

    assert app.config["flask_requests"] == 1
    assert _headers_without(early_with_origin, PER_REQUEST) == _headers_without(
        stack_with_origin, PER_REQUEST
    )
    # CORS covers the API only: a browser gets no CORS headers from the probe.
    assert "Access-Control-Allow-Origin" not in stack_with_origin.headers


def test_an_early_answer_echoes_a_sane_request_id_and_replaces_another(proxied_app):
    client = proxied_app.test_client()
    client.get(LIVE_PATH)

    echoed = client.get(LIVE_PATH, headers={"X-Request-ID": "probe-42"})
    replaced = client.get(LIVE_PATH, headers={"X-Request-ID": "bad id\x7f" * 3})

    assert echoed.headers["X-Request-ID"] == "probe-42"
    assert len(replaced.headers["X-Request-ID"]) == 32
    assert proxied_app.config["flask_requests"] == 1


def test_an_early_answer_writes_its_access_line_and_counts_in_the_metrics(proxied_app, log_records):
    client = proxied_app.test_client()
    client.get(LIVE_PATH, headers=FORWARDED_HTTPS)
    labels = {"endpoint": LIVE_PATH, "method": "GET", "status": "200"}
    counted = REGISTRY.get_sample_value("steadfast_http_requests_total", labels) or 0.0
    timed = REGISTRY.get_sample_value("steadfast_http_request_duration_seconds_count", labels)
    log_records.clear()

    response = client.get(
        LIVE_PATH, headers={**FORWARDED_HTTPS, "X-Request-ID": "probe-7", "User-Agent": "kube"}
    )

    assert proxied_app.config["flask_requests"] == 1
    [access] = [record for record in log_records if record.get("access")]
    assert access["request_id"] == response.headers["X-Request-ID"] == "probe-7"
    assert (access["method"], access["path"], access["status"]) == ("GET", LIVE_PATH, 200)
    assert access["ip"] == "203.0.113.9"  # the client nginx saw, through ProxyFix
    assert access["user_agent"] == "kube"
    assert isinstance(access["duration_ms"], float)
    assert access["message"] == f"GET {LIVE_PATH} 200"
    assert len(log_records) == 1
    assert REGISTRY.get_sample_value("steadfast_http_requests_total", labels) == counted + 1
    assert (
        REGISTRY.get_sample_value("steadfast_http_request_duration_seconds_count", labels)
        == timed + 1
    )


@pytest.mark.parametrize(
    ("method", "path", "headers", "status"),
    [
        ("GET", LIVE_PATH + "?verbose=1", {}, 200),
        ("GET", LIVE_PATH + "?a=1&a=2", {}, 400),
        ("POST", LIVE_PATH, {}, 405),
        ("OPTIONS", LIVE_PATH, {}, 204),
        ("GET", LIVE_PATH + "/", {}, 404),
    ],
)
def test_anything_but_a_plain_probe_goes_through_the_stack(
    proxied_app, method, path, headers, status
):
    client = proxied_app.test_client()
    client.get(LIVE_PATH)
    before = proxied_app.config["flask_requests"]

    response = client.open(path, method=method, headers=headers)

    assert proxied_app.config["flask_requests"] == before + 1
    assert response.status_code == status
    if status >= 400:
        assert response.get_json()["success"] is False


def test_a_scheme_other_than_http_or_https_is_never_kept(proxied_app):
    client = proxied_app.test_client()
    for index in range(3):
        headers = {"X-Forwarded-Proto": f"made-up-{index}"}
        assert client.get(LIVE_PATH, headers=headers).status_code == 200
        assert client.get(LIVE_PATH, headers=headers).status_code == 200

    # Every one went through the stack: nothing was learnt for those schemes.
    assert proxied_app.config["flask_requests"] == 6


def test_a_probe_with_a_body_goes_through_the_stack(proxied_app):
    client = proxied_app.test_client()
    client.get(LIVE_PATH)

    client.get(LIVE_PATH, data=b"{}", content_type="application/json")

    assert proxied_app.config["flask_requests"] == 2
