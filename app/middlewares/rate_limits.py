"""Rate limits (flask-limiter): per client IP on /api/ and auth, per account on failed logins.

Counters live in Redis (REDIS_URL), so every worker and every instance shares them; the
storage (app/middlewares/rate_limit_storage.py) takes a hit and the window for its headers in
one round trip. If Redis fails, flask-limiter switches to process memory (a warning is
logged, no request fails), and probes Redis again with a growing back-off (1, 2, 4 ... 32 s)
until it answers.

Views opt in with decorators that only mark the function (`auth_rate_limit`,
`login_failure_limit`); `apply_route_limits` binds the marks to each app's own Limiter.
One Limiter per app, not one per module, because tests and tools build several apps in one
process and a Limiter holds its storage and its fallback state.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from typing import Any, TypeVar

from blinker import Namespace
from flask import Flask, Response, current_app, request
from flask_limiter import HeaderNames, Limiter, RequestLimit

from app.config import Settings
from app.middlewares.paths import PROBE_PATHS
from app.middlewares.rate_limit_resolution import resolve_limits_once_per_route
from app.middlewares.rate_limit_storage import SCHEME_PREFIX
from app.state import settings

View = TypeVar("View", bound=Callable[..., Any])

EXTENSION_KEY = "steadfast_limiter"
BOUND_ENDPOINTS_KEY = "steadfast_rate_limited_endpoints"
ROUTE_LIMITS_ATTRIBUTE = "steadfast_rate_limits"
AUTH_SCOPE = "auth"
LOGIN_FAILURES_SCOPE = "login-failures"
STORAGE_KEY_PREFIX = "steadfast:limits"
LIMITED_PATH_PREFIX = "/api/"
# Bounded so a hung Redis stalls only the request that finds it out (about 2 s measured,
# redis-py retrying once) and each back-off probe after it; others use memory meanwhile.
STORAGE_TIMEOUT_S = 1.0
# flask-limiter would write its Retry-After on every response, overriding one a 503 set;
# it writes here instead, and `_finish_ratelimit_headers` moves it to Retry-After on a 429.
LIMITER_RETRY_AFTER_HEADER = "X-Steadfast-Limiter-Retry-After"
_LIMITER_RETRY_AFTER_LOWER = LIMITER_RETRY_AFTER_HEADER.lower()

_signals = Namespace()
#: Sent once per rejected request with `scope` (the limit's scope) and `limit` (its text).
#: METRICS HOOK: app/monitoring/metrics.py connects a Prometheus counter here
#: (`rate_limit_rejected.connect(handler)`); nothing else needs to change.
rate_limit_rejected = _signals.signal("rate-limit-rejected")


def client_ip() -> str:
    """The rate-limit key: the client address, as ProxyFix computed it from trusted hops."""
    return request.remote_addr or "unknown"


def login_account_key() -> str:
    """The account a login attempt names: a digest of the normalised email of the JSON body.

    Hashed so Redis keys never hold an email address. A body that cannot be read here (not
    JSON, too large, malformed) shares one key; it is rejected before any 401 is counted.
    """
    body = None
    length = request.content_length
    if request.is_json and length is not None and length <= (request.max_content_length or 0):
        try:
            body = request.get_json(silent=True)
        except Exception:  # noqa: BLE001
            # Any error escaping a key function makes flask-limiter believe its storage
            # failed and switch to memory: a hostile body must not be able to do that.
            body = None
    email = body.get("email") if isinstance(body, dict) else None
    if not isinstance(email, str) or not email.strip():
        return "unparsed"
    normalised = email.strip().lower()
    return hashlib.sha256(normalised.encode("utf-8", "surrogatepass")).hexdigest()[:32]


def _request_identifier() -> str:
    # flask-limiter skips requests with no endpoint; naming them keeps a scan of unknown
    # /api/ URLs (404s) inside the default limit.
    return request.endpoint or "unrouted"


def _is_exempt() -> bool:
    if request.method == "OPTIONS":
        # CORS preflights are sent by browsers, cached, and do no work.
        return True
    # Load balancers and Prometheus must always get through.
    return PROBE_PATHS.match(request.path)


class ExemptFirstLimiter(Limiter):
    """flask-limiter that lets exempt requests (health, metrics, preflights) through first.

    The exemption is decided here rather than in a `request_filter`: the stock hook resolves
    the view's limits and the blueprint exemptions before it consults its request filters,
    about 30 us of every `/health/live` (a third of that probe's own middleware cost), spent
    to learn nothing. This one check covers both of the Limiter's entry points (the
    before-request hook and the route decorators); limited requests take the stock path.
    """

    def _check_request_limit(
        self, callable_name: str | None = None, in_middleware: bool = True
    ) -> None:
        if _is_exempt():
            return
        super()._check_request_limit(callable_name, in_middleware)


def _outside_api() -> bool:
    return not request.path.startswith(LIMITED_PATH_PREFIX)


def _is_failed_login(response: Response) -> bool:
    return response.status_code == 401


def _on_breach(request_limit: RequestLimit) -> None:
    # request_args end with the limit's scope: "global" (RATE_LIMIT_DEFAULT), "auth", ...
    scope = request_limit.request_args[-1] if request_limit.request_args else ""
    rate_limit_rejected.send(
        current_app._get_current_object(),  # type: ignore[attr-defined]
        scope=scope,
        limit=str(request_limit.limit),
    )


def _finish_ratelimit_headers(response: Response) -> Response:
    """Retry-After on a 429 only, and the IETF draft `RateLimit-*` names beside
    flask-limiter's `X-RateLimit-*`.

    `RateLimit-Reset` is seconds from now (draft-ietf-httpapi-ratelimit-headers), where
    `X-RateLimit-Reset` is an epoch timestamp.
    """
    headers = response.headers
    # Werkzeug finds a header by lower-casing every name before it, so each look-up or set
    # is a scan of the whole list (~20 headers here): the names are read once instead, and
    # headers known to be absent are appended (finding 42).
    # Reversed, so that a name given twice reads as its first value, as a look-up would.
    present = {name.lower(): value for name, value in reversed(list(headers))}
    retry_after = present.get(_LIMITER_RETRY_AFTER_LOWER)
    if retry_after is not None:
        headers.remove(LIMITER_RETRY_AFTER_HEADER)
        if response.status_code == 429:
            headers["Retry-After"] = retry_after
    limit = present.get("x-ratelimit-limit")
    if limit is None:
        return response
    try:
        reset_in = max(0, int(present["x-ratelimit-reset"]) - int(time.time()))
    except (KeyError, ValueError):
        reset_in = None
    for name, value in (
        ("RateLimit-Limit", limit),
        ("RateLimit-Remaining", present.get("x-ratelimit-remaining")),
        ("RateLimit-Reset", reset_in),
    ):
        if value is None:
            continue
        if name.lower() in present:
            headers[name] = value
        else:
            headers.add(name, value)
    return response


def limiter_storage_uri(redis_url: str | None) -> str:
    """The `limits` storage URI: SingleTripRedisStorage on REDIS_URL, else process memory."""
    if not redis_url:
        return "memory://"
    # The `limits` library spells a Redis unix socket `redis+unix://`.
    if redis_url.startswith("unix://"):
        redis_url = "redis+" + redis_url
    return SCHEME_PREFIX + redis_url


def _limiter_for(app_settings: Settings) -> Limiter:
    storage_uri = limiter_storage_uri(app_settings.redis_url)
    storage_options: dict[str, Any] = {}
    if storage_uri != "memory://":
        storage_options = {
            "key_prefix": STORAGE_KEY_PREFIX,
            "socket_timeout": STORAGE_TIMEOUT_S,
            "socket_connect_timeout": STORAGE_TIMEOUT_S,
        }
    app_limiter = ExemptFirstLimiter(
        key_func=client_ip,
        # Read from the serving app's settings when a route is first resolved, then kept
        # (app/middlewares/rate_limit_resolution.py): one Limiter per app, settings fixed.
        application_limits=[lambda: settings().rate_limit_default],
        application_limits_exempt_when=_outside_api,
        storage_uri=storage_uri,
        storage_options=storage_options,
        strategy="fixed-window",
        headers_enabled=True,
        header_name_mapping={HeaderNames.RETRY_AFTER: LIMITER_RETRY_AFTER_HEADER},
        # The fallback: the same limits, counted in this process while Redis is away.
        in_memory_fallback_enabled=True,
        # A storage error anywhere else (e.g. counting a failed login after the response)
        # is logged and ignored: limits must never fail a request.
        swallow_errors=True,
        on_breach=_on_breach,
        request_identifier=_request_identifier,
    )
    resolve_limits_once_per_route(app_limiter)
    return app_limiter


def limiter() -> Limiter:
    """The current app's Limiter."""
    return current_app.extensions[EXTENSION_KEY]


def init_rate_limits(app: Flask, app_settings: Settings) -> None:
    """Create this app's Limiter; call before the other request hooks so every request counts."""
    # Registered before the Limiter's own after_request, so it runs after it (Flask runs
    # after_request functions in reverse order) and sees the headers the Limiter set.
    app.after_request(_finish_ratelimit_headers)
    app_limiter = _limiter_for(app_settings)
    app_limiter.init_app(app)
    app.extensions[EXTENSION_KEY] = app_limiter


def _mark(view: View, scope: str) -> View:
    marks = getattr(view, ROUTE_LIMITS_ATTRIBUTE, ())
    setattr(view, ROUTE_LIMITS_ATTRIBUTE, (*marks, scope))
    return view


def auth_rate_limit(view: View) -> View:
    """RATE_LIMIT_AUTH per client IP, shared by every auth endpoint (register, login, reset).

    Put it directly above the `def`, below the flask-smorest decorators.
    """
    return _mark(view, AUTH_SCOPE)


def login_failure_limit(view: View) -> View:
    """RATE_LIMIT_LOGIN_FAILURES per account: only responses with status 401 count.

    An attacker rotating IPs against one account is still slowed; once the limit is reached
    the account's logins get 429 (even with the right password) until the window ends.
    """
    return _mark(view, LOGIN_FAILURES_SCOPE)


def _route_limit(app_limiter: Limiter, scope: str) -> Callable[[View], View]:
    if scope == AUTH_SCOPE:
        return app_limiter.shared_limit(
            lambda: settings().rate_limit_auth, scope=AUTH_SCOPE, override_defaults=False
        )
    if scope == LOGIN_FAILURES_SCOPE:
        return app_limiter.shared_limit(
            lambda: settings().rate_limit_login_failures,
            scope=LOGIN_FAILURES_SCOPE,
            key_func=login_account_key,
            deduct_when=_is_failed_login,
            override_defaults=False,
        )
    raise ValueError(f"unknown rate limit scope {scope!r}")


def apply_route_limits(app: Flask) -> None:
    """Bind the limits marked on views to this app's Limiter; call after the blueprints."""
    app_limiter: Limiter = app.extensions[EXTENSION_KEY]
    # Idempotent, so views added later (tests, plugins) can be bound by calling it again.
    bound: set[str] = app.extensions.setdefault(BOUND_ENDPOINTS_KEY, set())
    for endpoint, view in list(app.view_functions.items()):
        scopes = getattr(view, ROUTE_LIMITS_ATTRIBUTE, ())
        if not scopes or endpoint in bound:
            continue
        limited = view
        for scope in scopes:
            limited = _route_limit(app_limiter, scope)(limited)
        app.view_functions[endpoint] = limited
        bound.add(endpoint)
