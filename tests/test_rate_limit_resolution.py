"""A route's limits are resolved once and forgotten whenever a limit or exemption is added."""

from __future__ import annotations

import pytest
from flask import Flask
from flask_limiter import Limiter
from flask_limiter._manager import LimitManager

from app.middlewares.rate_limit_resolution import (
    RouteCachingLimitManager,
    resolve_limits_once_per_route,
)
from app.middlewares.rate_limits import limiter
from tests.conftest import STRONG_PASSWORD, bearer, login, register, unique_email


@pytest.fixture
def resolutions(monkeypatch) -> list[tuple]:
    """Every resolution flask-limiter's own LimitManager works out from scratch."""
    seen: list[tuple] = []
    resolve = LimitManager.resolve_limits

    def counting(self, app, endpoint=None, blueprint=None, *args, **kwargs):
        seen.append((endpoint, blueprint, *args))
        return resolve(self, app, endpoint, blueprint, *args, **kwargs)

    monkeypatch.setattr(LimitManager, "resolve_limits", counting)
    return seen


def _bare_app() -> tuple[Flask, Limiter]:
    app = Flask(__name__)
    app_limiter = Limiter(
        key_func=lambda: "client", storage_uri="memory://", application_limits=["5 per hour"]
    )
    resolve_limits_once_per_route(app_limiter)
    app_limiter.init_app(app)

    @app.get("/open")
    def open_view() -> str:
        return "open"

    @app.get("/tight")
    def tight_view() -> str:
        return "tight"

    return app, app_limiter


def test_the_apps_limiter_resolves_each_route_once(make_app, redis_url, resolutions):
    app = make_app(REDIS_URL=redis_url, RATE_LIMIT_DEFAULT="1000 per hour")
    with app.app_context():
        assert isinstance(limiter().limit_manager, RouteCachingLimitManager)
    client = app.test_client()
    email = unique_email("resolve")
    assert register(client, email).status_code == 201
    headers = bearer(login(client, email, STRONG_PASSWORD).get_json()["data"]["access_token"])
    resolutions.clear()
    for _ in range(5):
        response = client.get("/api/v1/users/me", headers=headers)
        assert response.status_code == 200
        # Still counted and reported on every request.
        assert response.headers["RateLimit-Limit"] == "1000"
    assert len(resolutions) == 1


def test_the_limits_still_apply_from_the_remembered_resolution(make_app, redis_url):
    app = make_app(REDIS_URL=redis_url, RATE_LIMIT_DEFAULT="3 per hour")
    client = app.test_client()
    statuses = [
        client.get("/api/v1/users/me", environ_base={"REMOTE_ADDR": "198.51.100.7"}).status_code
        for _ in range(4)
    ]
    assert statuses == [401, 401, 401, 429]


def test_a_limit_added_after_a_request_is_applied(resolutions):
    app, app_limiter = _bare_app()
    client = app.test_client()
    assert client.get("/tight").status_code == 200
    before = len(resolutions)

    # A decorated limit registered once requests are being served (the Limiter's
    # add_decorated_limit), as flask-limiter's own decorator does.
    app.view_functions["tight_view"] = app_limiter.limit("1 per hour")(
        app.view_functions["tight_view"]
    )
    statuses = [client.get("/tight").status_code for _ in range(2)]
    assert statuses == [200, 429]
    assert len(resolutions) > before
    # The other route kept its own limits: 5 per hour, two of them used.
    assert client.get("/open").headers.get("X-RateLimit-Remaining") in (None, "2")


def test_an_exemption_added_after_a_request_is_applied():
    app, app_limiter = _bare_app()
    client = app.test_client()
    for _ in range(5):
        assert client.get("/open").status_code == 200
    assert client.get("/open").status_code == 429
    app_limiter.exempt(app.view_functions["open_view"])
    assert client.get("/open").status_code == 200


def test_callers_get_copies_of_the_remembered_lists():
    app, app_limiter = _bare_app()
    manager = app_limiter.limit_manager
    with app.test_request_context("/open"):
        first = manager.resolve_limits(app, "open_view", None, None, True, False)
        first[0].clear()
        again = manager.resolve_limits(app, "open_view", None, None, True, False)
    assert len(again[0]) == 1
