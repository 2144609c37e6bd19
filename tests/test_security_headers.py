"""Security headers, the HTTPS redirect, proxy trust and CORS, as API clients see them."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from flask import Flask

from app import create_app
from app.middlewares.security import (
    API_CONTENT_SECURITY_POLICY,
    DOCS_CONTENT_SECURITY_POLICY,
    content_security_policy_for,
)
from tests.conftest import assert_error_envelope, register

API_CSP = "default-src 'none'; frame-ancestors 'none'"
PRODUCTION = {"APP_ENV": "production", "JWT_SECRET": "x" * 40, "REDIS_URL": "redis://127.0.0.1:1"}


@pytest.fixture
def production_app(postgresql_database_url: str) -> Callable[..., Flask]:
    """Production settings (they require PostgreSQL); these tests write no rows."""

    def build(**overrides: str) -> Flask:
        return create_app({**PRODUCTION, "DATABASE_URL": postgresql_database_url, **overrides})

    return build


def _assert_api_security_headers(response) -> None:
    assert response.headers["Content-Security-Policy"] == API_CSP
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Referrer-Policy"] == "no-referrer"
    assert response.headers["X-Frame-Options"] == "DENY"


def test_a_successful_api_response_carries_the_security_headers(client):
    response = register(client)
    assert response.status_code == 201
    _assert_api_security_headers(response)
    # Development and test serve plain HTTP: no HSTS there.
    assert "Strict-Transport-Security" not in response.headers


@pytest.mark.parametrize(
    ("method", "path"),
    [("GET", "/api/v1/nowhere"), ("GET", "/api/v1/users/me"), ("PUT", "/api/v1/auth/login")],
)
def test_error_responses_carry_the_security_headers_too(client, method, path):
    response = client.open(path, method=method)
    assert response.status_code in (401, 404, 405)
    _assert_api_security_headers(response)


def test_the_docs_paths_get_a_csp_that_swagger_ui_can_run_under():
    docs = content_security_policy_for("/api/docs")
    assert docs is content_security_policy_for("/api/docs/swagger-ui-bundle.js")
    assert docs is DOCS_CONTENT_SECURITY_POLICY
    assert docs["script-src"] == "'self'" and "unsafe-inline" not in docs["script-src"]
    assert docs["connect-src"] == "'self'" and docs["frame-ancestors"] == "'none'"
    for path in ("/api/v1/users", "/api/docsx", "/api/openapi.json", "/health"):
        assert content_security_policy_for(path) is API_CONTENT_SECURITY_POLICY


def test_a_docs_path_response_carries_the_docs_csp_without_inline_allowances(client):
    response = client.get("/api/docs/anything")
    csp = response.headers["Content-Security-Policy"]
    assert csp.startswith("default-src 'none'; script-src 'self';")
    assert "unsafe-inline" not in csp and "nonce-" not in csp
    assert "connect-src 'self'" in csp and "frame-ancestors 'none'" in csp


def test_api_and_docs_responses_keep_their_own_csp_whatever_came_before(client):
    # The API's CSP value is rendered once and kept; the docs page's is not that one.
    for _ in range(2):
        assert client.get("/api/v1/users/me").headers["Content-Security-Policy"] == API_CSP
        docs_csp = client.get("/api/docs/anything").headers["Content-Security-Policy"]
        assert docs_csp.startswith("default-src 'none'; script-src 'self';")


def test_security_headers_a_view_wrote_are_replaced_once_not_repeated(client, app):
    @app.get("/api/v1/_test/own-security-headers")
    def own_security_headers() -> tuple[dict, int, list[tuple[str, str]]]:
        own = [("x-frame-options", "SAMEORIGIN"), ("X-Frame-Options", "ALLOW-FROM x")]
        return {"ok": True}, 200, [*own, ("Referrer-Policy", "origin"), ("X-Kept", "1")]

    for _ in range(2):  # the first response captures talisman's headers, the second reuses them
        response = client.get("/api/v1/_test/own-security-headers")
        assert response.status_code == 200
        _assert_api_security_headers(response)
        for name in ("X-Frame-Options", "Referrer-Policy", "Content-Security-Policy"):
            assert len(response.headers.getlist(name)) == 1, name
        assert response.headers["X-Kept"] == "1"


def test_a_view_with_its_own_talisman_options_gets_them(client, app):
    # What flask-talisman's per-view decorator leaves on the view.
    def framed() -> dict:
        return {"ok": True}

    framed.talisman_view_options = {"frame_options": "SAMEORIGIN"}  # type: ignore[attr-defined]
    app.add_url_rule("/api/v1/_test/framed", view_func=framed)

    assert client.get("/api/v1/_test/framed").headers["X-Frame-Options"] == "SAMEORIGIN"
    assert client.get("/api/v1/users/me").headers["X-Frame-Options"] == "DENY"


def test_https_and_plain_http_responses_keep_their_own_security_headers(production_app):
    client = production_app().test_client()
    for _ in range(2):
        plain = client.get("/api/v1/users/me")
        assert plain.status_code == 308
        assert "Strict-Transport-Security" not in plain.headers
        _assert_api_security_headers(plain)
        secure = client.get("/api/v1/users/me", base_url="https://api.example")
        assert secure.headers["Strict-Transport-Security"].startswith("max-age=31536000")
        _assert_api_security_headers(secure)


def test_production_redirects_plain_http_to_https_with_a_json_308(production_app):
    client = production_app().test_client()
    response = client.post("/api/v1/auth/login?next=1", json={})
    body = assert_error_envelope(response, 308, "https_required")
    assert "HTTPS" in body["message"]
    assert response.headers["Location"] == "https://localhost/api/v1/auth/login?next=1"
    _assert_api_security_headers(response)


def test_production_sends_hsts_for_one_year_on_https(production_app):
    client = production_app().test_client()
    response = client.get("/api/v1/users/me", base_url="https://api.example")
    assert response.status_code == 401
    assert response.headers["Strict-Transport-Security"] == "max-age=31536000; includeSubDomains"


@pytest.mark.parametrize("path", ["/health", "/health/live", "/health/ready", "/metrics"])
def test_production_never_redirects_health_and_metrics(production_app, path):
    client = production_app().test_client()
    response = client.get(path)
    assert response.status_code != 308 and "Location" not in response.headers


def test_x_forwarded_proto_is_ignored_without_a_trusted_proxy(production_app):
    client = production_app(TRUSTED_PROXIES="0").test_client()
    response = client.get("/api/v1/users/me", headers={"X-Forwarded-Proto": "https"})
    assert response.status_code == 308
    assert "Strict-Transport-Security" not in response.headers


def test_x_forwarded_proto_from_a_trusted_proxy_counts_as_https(production_app):
    client = production_app(TRUSTED_PROXIES="1").test_client()
    response = client.get(
        "/api/v1/users/me",
        headers={"X-Forwarded-Proto": "https", "X-Forwarded-For": "203.0.113.9"},
    )
    assert response.status_code == 401
    assert response.headers["Strict-Transport-Security"].startswith("max-age=31536000")


def _remote_addr_seen(make_app, trusted_proxies: str, forwarded_for: str) -> str:
    app = make_app(TRUSTED_PROXIES=trusted_proxies)
    seen: list[str] = []

    @app.get("/api/v1/_test/remote-addr")
    def remote_addr() -> dict:
        from flask import request

        seen.append(request.remote_addr)
        return {"ok": True}

    response = app.test_client().get(
        "/api/v1/_test/remote-addr",
        headers={"X-Forwarded-For": forwarded_for},
        environ_base={"REMOTE_ADDR": "10.0.0.2"},
    )
    assert response.status_code == 200
    return seen[0]


def test_with_no_trusted_proxy_a_client_cannot_spoof_its_ip(make_app):
    assert _remote_addr_seen(make_app, "0", "198.51.100.7") == "10.0.0.2"


def test_with_one_trusted_proxy_the_client_ip_is_the_one_nginx_appended(make_app):
    # nginx appends the peer it saw; anything the client wrote before it is not believed.
    assert _remote_addr_seen(make_app, "1", "6.6.6.6, 198.51.100.7") == "198.51.100.7"


ALLOWED_ORIGIN = "https://app.example"


def _cors_client(make_app):
    return make_app(CORS_ORIGINS=f"{ALLOWED_ORIGIN},https://admin.example").test_client()


def test_cors_echoes_an_allowed_origin_with_credentials(make_app):
    response = _cors_client(make_app).get("/api/v1/users/me", headers={"Origin": ALLOWED_ORIGIN})
    assert response.headers["Access-Control-Allow-Origin"] == ALLOWED_ORIGIN
    assert response.headers["Access-Control-Allow-Credentials"] == "true"
    assert "X-Request-ID" in response.headers["Access-Control-Expose-Headers"]
    assert "Origin" in response.headers["Vary"]


def test_cors_with_one_allowed_origin_still_varies_on_origin(make_app):
    # With one origin flask-cors leaves Vary out, yet the answer differs by Origin: a shared
    # cache must not hand the allowed origin a response stored for another client.
    client = make_app(CORS_ORIGINS=ALLOWED_ORIGIN).test_client()
    # A 200 (after-request hooks) and a 401 (flask-cors's error-handler path).
    for path in ("/api/openapi.json", "/api/v1/users/me"):
        for headers in ({"Origin": ALLOWED_ORIGIN}, {"Origin": "https://evil.example"}, {}):
            response = client.get(path, headers=headers)
            assert response.headers.getlist("Vary") == ["Origin"], (path, headers)
    allowed = client.get("/api/openapi.json", headers={"Origin": ALLOWED_ORIGIN})
    assert allowed.headers["Access-Control-Allow-Origin"] == ALLOWED_ORIGIN


def test_cors_with_two_allowed_origins_sends_one_vary_origin(make_app):
    client = _cors_client(make_app)
    for path in ("/api/openapi.json", "/api/v1/users/me"):
        response = client.get(path, headers={"Origin": ALLOWED_ORIGIN})
        assert response.headers.getlist("Vary") == ["Origin"], path


@pytest.mark.parametrize(
    ("vary_of_the_view", "expected"),
    [
        ("Accept-Encoding", "Accept-Encoding, Origin"),
        ("accept-language, origin", "accept-language, origin"),
        ("Accept, ORIGIN ", "Accept, ORIGIN "),
    ],
)
def test_cors_adds_origin_to_a_vary_the_view_set_once(make_app, vary_of_the_view, expected):
    app = make_app(CORS_ORIGINS=ALLOWED_ORIGIN)

    @app.get("/api/v1/_test/varies")
    def varies() -> tuple[dict, int, dict]:
        return {"ok": True}, 200, {"Vary": vary_of_the_view}

    for headers in ({"Origin": ALLOWED_ORIGIN}, {}):
        response = app.test_client().get("/api/v1/_test/varies", headers=headers)
        assert response.headers.getlist("Vary") == [expected], headers


def test_cors_gives_no_cors_headers_to_any_other_origin(make_app):
    response = _cors_client(make_app).get(
        "/api/v1/users/me", headers={"Origin": "https://evil.example"}
    )
    assert response.status_code == 401
    assert not [name for name, _ in response.headers if name.startswith("Access-Control-")]


def test_cors_preflight_is_answered_and_cached(make_app):
    response = _cors_client(make_app).options(
        "/api/v1/users",
        headers={
            "Origin": ALLOWED_ORIGIN,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "Content-Type, Authorization",
        },
    )
    # Any 2xx satisfies a browser; the app answers every automatic OPTIONS with 204.
    assert response.status_code == 204
    assert response.headers["Access-Control-Allow-Origin"] == ALLOWED_ORIGIN
    assert "POST" in response.headers["Access-Control-Allow-Methods"]
    assert "authorization" in response.headers["Access-Control-Allow-Headers"].lower()
    assert response.headers["Access-Control-Max-Age"] == "600"


def test_without_cors_origins_no_origin_gets_cors_headers(client):
    response = client.get("/api/v1/users/me", headers={"Origin": ALLOWED_ORIGIN})
    assert "Access-Control-Allow-Origin" not in response.headers


def _cors_view(response) -> list[tuple[str, str]]:
    return [
        (name, value)
        for name, value in response.headers
        if name.startswith("Access-Control-") or name == "Vary"
    ]


def test_memoised_cors_answers_exactly_as_flask_cors_does(make_app, monkeypatch):
    from app.middlewares import security

    settings = {"CORS_ORIGINS": f"{ALLOWED_ORIGIN},https://admin.example"}
    memoised = make_app(**settings)
    monkeypatch.setattr(security, "memoised_cors", lambda stock_hook: stock_hook)
    stock = make_app(**settings)
    (memo,) = [hook.memo for hook in memoised.after_request_funcs[None] if hasattr(hook, "memo")]
    assert not [hook for hook in stock.after_request_funcs[None] if hasattr(hook, "memo")]

    @memoised.get("/api/v1/_test/plain")
    @stock.get("/api/v1/_test/plain")
    def plain() -> dict:
        return {"ok": True}

    private_network = {"Access-Control-Request-Private-Network": "true"}
    requests = [
        ("GET", path, headers)
        for path in ("/api/v1/_test/plain", "/api/v1/users/me", "/api/openapi.json", "/health")
        for headers in (
            {"Origin": ALLOWED_ORIGIN},
            {"Origin": "https://admin.example"},
            {"Origin": "https://evil.example"},
            {"Origin": ""},
            {},
            {"Origin": ALLOWED_ORIGIN, **private_network},
        )
    ]
    requests.append(
        (
            "OPTIONS",
            "/api/v1/users",
            {"Origin": ALLOWED_ORIGIN, "Access-Control-Request-Method": "POST"},
        )
    )
    for _ in range(2):  # the first round fills the memo, the second answers from it
        for method, path, headers in requests:
            expected = stock.test_client().open(path, method=method, headers=headers)
            actual = memoised.test_client().open(path, method=method, headers=headers)
            assert actual.status_code == expected.status_code, (method, path, headers)
            assert _cors_view(actual) == _cors_view(expected), (method, path, headers)
    assert set(memo) == {ALLOWED_ORIGIN, "https://admin.example", "https://evil.example", ""}
    allowed = memoised.test_client().get("/api/v1/_test/plain", headers={"Origin": ALLOWED_ORIGIN})
    assert allowed.headers["Access-Control-Allow-Origin"] == ALLOWED_ORIGIN


def test_the_cors_memo_keeps_a_bounded_number_of_origins(make_app):
    from app.middlewares.security import CORS_MEMO_MAX_ORIGINS

    app = make_app(CORS_ORIGINS=ALLOWED_ORIGIN)
    (memo,) = [hook.memo for hook in app.after_request_funcs[None] if hasattr(hook, "memo")]
    client = app.test_client()
    for number in range(CORS_MEMO_MAX_ORIGINS + 20):
        origin = f"https://client-{number}.example"
        response = client.get("/api/openapi.json", headers={"Origin": origin})
        assert "Access-Control-Allow-Origin" not in response.headers
    assert len(memo) == CORS_MEMO_MAX_ORIGINS
    # Past the bound, an allowed origin is still answered (worked out each time).
    response = client.get("/api/openapi.json", headers={"Origin": ALLOWED_ORIGIN})
    assert response.headers["Access-Control-Allow-Origin"] == ALLOWED_ORIGIN
    assert response.headers.getlist("Vary") == ["Origin"]
