"""The Flask class of the app: Flask's own, but for what an automatic OPTIONS answers, how it
tells a coroutine function from a plain one, and its response class (app/responses.py)."""

from __future__ import annotations

from collections.abc import Callable
from inspect import CO_COROUTINE
from typing import Any

from flask import Flask, Response

from app.responses import SteadfastResponse

# What `inspect.markcoroutinefunction` (Python 3.12+) sets on a function it marks.
_COROUTINE_MARKER = "_is_coroutine_marker"


class SteadfastFlask(Flask):
    """Flask whose automatic OPTIONS reply is 204 No Content with its `Allow` header, and whose
    `ensure_sync` reads a plain function's code flags.

    Flask's default is a 200 with an empty body typed text/html, the one reply of the API that
    would not be JSON (SPEC section 2). A CORS preflight gets the same 204, with the headers
    flask-cors adds; browsers accept any 2xx for a preflight.
    """

    response_class = SteadfastResponse

    def make_default_options_response(self) -> Response:
        response = super().make_default_options_response()
        response.status_code = 204
        # Nothing follows, so nothing to type: Werkzeug would call the empty body text/html.
        del response.headers["Content-Type"]
        return response

    def ensure_sync(self, func: Callable[..., Any]) -> Callable[..., Any]:
        # Flask asks this of every hook and view on every request (22 times for a
        # GET /users/me), and `inspect.iscoroutinefunction` takes about six Python calls to
        # answer it; a function or a bound method states it in its code flags: -1.1 % of the
        # instructions of that request (docs/performance.md, finding 42). Anything else
        # (partials, callable objects, coroutine functions and functions marked as such)
        # gets Flask's own answer. The mark is looked for in __dict__ because a failed
        # getattr on a bound method builds an AttributeError and its message first, which
        # cost most of what this saves.
        code = getattr(func, "__code__", None)
        if (
            code is not None
            and not code.co_flags & CO_COROUTINE
            and _COROUTINE_MARKER not in getattr(func, "__dict__", ())
        ):
            return func
        return super().ensure_sync(func)
