"""A route's limits are resolved once and forgotten whenever a limit or exemption is added."""

from __future__ import annotations

import pytest
from flask import Flask, request
from flask_limiter import Limiter
from flask_limiter._manager import LimitManager
from flask_limiter.constants import ExemptionScope

from app.middlewares import rate_limits
from app.middlewares.rate_limit_resolution import (
    RouteCachingLimitManager,
    resolve_limits_once_per_route,
)
from app.middlewares.rate_limits import ExemptFirstLimiter, limiter
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


@pytest.fixture
def stock_filters(monkeypatch) -> list[tuple]:
    """Every call that reaches flask-limiter's own filter of a request's limits."""
    seen: list[tuple] = []
    stock = rate_limits._STOCK_FILTER

    def counting(self, endpoint, blueprint, callable_name, in_middleware=False):
        seen.append((endpoint, callable_name, in_middleware))
        return stock(self, endpoint, blueprint, callable_name, in_middleware)

    monkeypatch.setattr(rate_limits, "_STOCK_FILTER", counting)
    return seen


def _bare_app(limiter_class: type[Limiter] = Limiter) -> tuple[Flask, Limiter]:
    app = Flask(__name__)
    app_limiter = limiter_class(
        key_func=lambda: "client", storage_uri="memory://", application_limits=["5 per hour"]
    )
    if not isinstance(app_limiter.limit_manager, RouteCachingLimitManager):
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


LIMITER_CLASSES = pytest.mark.parametrize("limiter_class", [Limiter, ExemptFirstLimiter])


@LIMITER_CLASSES
def test_a_limit_added_after_a_request_is_applied(resolutions, limiter_class):
    app, app_limiter = _bare_app(limiter_class)
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


@LIMITER_CLASSES
def test_an_exemption_added_after_a_request_is_applied(limiter_class):
    app, app_limiter = _bare_app(limiter_class)
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


def test_the_before_request_filter_is_worked_out_once_per_route(make_app, redis_url, stock_filters):
    app = make_app(REDIS_URL=redis_url, RATE_LIMIT_DEFAULT="1000 per hour")
    client = app.test_client()
    email = unique_email("filter")
    assert register(client, email).status_code == 201
    headers = bearer(login(client, email, STRONG_PASSWORD).get_json()["data"]["access_token"])
    remaining = []
    for _ in range(5):
        response = client.get("/api/v1/users/me", headers=headers)
        assert response.status_code == 200
        remaining.append(int(response.headers["RateLimit-Remaining"]))
    # Each request still counted, in Redis, against the default limit.
    assert remaining == sorted(remaining, reverse=True)
    assert len(set(remaining)) == 5
    assert stock_filters.count(("users.get_me", None, True)) == 1


def test_the_remembered_filter_answers_as_the_stock_one(make_app, redis_url):
    """Every route of the app, before-request check: the same limits, the same seen state,
    the same exemption scope."""
    app = make_app(REDIS_URL=redis_url)
    with app.app_context():
        app_limiter = limiter()
    # One route with an exemption scope of its own: exempt from meta limits only.
    app_limiter.exempt(app.view_functions["users.get_me"], flags=ExemptionScope.META)
    stock = rate_limits._STOCK_FILTER
    checked = limited = exempted = 0
    for rule in app.url_map.iter_rules():
        path = rule.rule.replace("<", "").replace(">", "")
        for _ in range(2):  # the first computes and remembers, the second answers from memory
            with app.test_request_context(path, method=sorted(rule.methods)[0]):
                ours = app_limiter._Limiter__filter_limits(
                    rule.endpoint, request.blueprint, None, True
                )
                ours_seen = list(app_limiter.context.seen_limits)
                app_limiter.context.reset()
                theirs = stock(app_limiter, rule.endpoint, request.blueprint, None, True)
                theirs_seen = list(app_limiter.context.seen_limits)
            assert ours == theirs, rule.endpoint
            assert ours_seen == theirs_seen, rule.endpoint
            blueprint = rule.endpoint.rpartition(".")[0] or None
            scope = app_limiter.limit_manager.exemption_scope(app, rule.endpoint, blueprint)
            assert scope == LimitManager.exemption_scope(
                app_limiter.limit_manager, app, rule.endpoint, blueprint
            ), rule.endpoint
            exempted += bool(scope)
            checked += 1
            limited += bool(ours)
    # Both kinds: routes with limits, and one without (static files, exempt by flask-limiter).
    assert limited > 10
    assert checked > limited
    assert exempted == 2  # users.get_me, asked twice


def test_route_decorators_and_the_memory_fallback_take_the_stock_filter(
    make_app, redis_url, stock_filters
):
    app = make_app(REDIS_URL=redis_url)
    client = app.test_client()
    for _ in range(2):
        assert login(client, unique_email("stock")).status_code == 401
    # The login route's own limits (auth, failed logins) are filtered by its decorator, stock.
    assert [call for call in stock_filters if not call[2]]
    with app.app_context():
        app_limiter = limiter()
    app_limiter._storage_dead = True
    try:
        stock_filters.clear()
        client.get("/api/v1/users/me")
        assert ("users.get_me", None, True) in stock_filters
    finally:
        app_limiter._storage_dead = False


def test_a_registration_during_the_first_answer_is_not_outlived():
    manager = _bare_app(ExemptFirstLimiter)[1].limit_manager

    def answer_while_a_limit_lands() -> tuple:
        manager.forget_resolved()  # what every registration does
        return ("stale",)

    assert manager.remembered("route", answer_while_a_limit_lands) == ("stale",)
    assert manager.remembered("route", lambda: ("fresh",)) == ("fresh",)
    assert manager.remembered("route", lambda: ("recomputed",)) == ("fresh",)


def test_the_limiter_state_is_one_per_request(make_app):
    app = make_app()
    with app.app_context():
        app_limiter = limiter()
    with app.test_request_context("/api/v1/users/me"):
        first = app_limiter.context
        assert app_limiter.context is first
        first.seen_limits.add("marker")
    with app.test_request_context("/api/v1/users/me"):
        assert app_limiter.context is not first
        assert not app_limiter.context.seen_limits
    with pytest.raises(RuntimeError, match="request context"):
        app_limiter.context  # noqa: B018 - the property itself is under test
