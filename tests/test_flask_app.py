"""SteadfastFlask's `ensure_sync` short cut gives Flask's own answer for every kind of callable."""

from __future__ import annotations

import functools

import pytest
from flask import Flask

from app.flask_app import SteadfastFlask


def plain_view() -> str:
    return "plain"


async def coroutine_view() -> str:
    return "coroutine"


class Hooks:
    def after(self, response):
        return response

    def __call__(self) -> str:
        return "callable object"


@pytest.fixture
def app() -> SteadfastFlask:
    return SteadfastFlask(__name__)


@pytest.mark.parametrize(
    "func",
    [plain_view, Hooks().after, Hooks(), functools.partial(plain_view), lambda: "lambda"],
    ids=["function", "bound method", "callable object", "partial", "lambda"],
)
def test_a_plain_callable_is_returned_as_it_is_like_flask_does(app, func):
    assert app.ensure_sync(func) is func
    assert Flask.ensure_sync(app, func) is func


@pytest.mark.parametrize(
    "func", [coroutine_view, functools.partial(coroutine_view)], ids=["async def", "partial"]
)
def test_a_coroutine_function_takes_flasks_own_path(app, func, monkeypatch):
    # Flask wraps coroutine functions with `async_to_sync` (asgiref, not installed here).
    wrapped: list = []
    monkeypatch.setattr(app, "async_to_sync", lambda f: wrapped.append(f) or "wrapped")
    assert app.ensure_sync(func) == "wrapped"
    assert wrapped == [func]


def test_a_function_marked_as_a_coroutine_function_takes_flasks_own_path(app, monkeypatch):
    def marked() -> None:
        return None

    # What `inspect.markcoroutinefunction` (Python 3.12+) sets.
    marked._is_coroutine_marker = object()
    calls: list = []
    monkeypatch.setattr(Flask, "ensure_sync", lambda self, f: calls.append(f) or "flask's")
    assert app.ensure_sync(marked) == "flask's"
    # A bound method of a marked function too: its __dict__ is the function's.
    Hooks.marked_method = marked
    try:
        method = Hooks().marked_method
        assert app.ensure_sync(method) == "flask's"
    finally:
        del Hooks.marked_method
    assert calls == [marked, method]


def test_views_and_hooks_still_run(app):
    seen: list[str] = []
    app.before_request(lambda: seen.append("before"))
    app.after_request(Hooks().after)
    app.add_url_rule("/plain", view_func=plain_view)
    response = app.test_client().get("/plain")
    assert response.get_data(as_text=True) == "plain"
    assert seen == ["before"]
