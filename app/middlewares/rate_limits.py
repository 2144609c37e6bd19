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
from collections import defaultdict
from collections.abc import Callable
from typing import Any, TypeVar

from blinker import Namespace
from flask import Flask, Response, current_app, request
from flask.globals import request_ctx
from flask_limiter import Limiter, RequestLimit
from flask_limiter._extension import LimiterContext
from werkzeug.http import parse_date

from app.config import Settings
from app.middlewares.headers import write_headers
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
# The rate-limit headers every limited response carries: flask-limiter's `X-RateLimit-*` and
# the IETF draft's (draft-ietf-httpapi-ratelimit-headers), whose Reset is seconds from now.
_DRAFT_HEADER_NAMES = ("RateLimit-Limit", "RateLimit-Remaining", "RateLimit-Reset")

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

    Its after-request hook writes both header families in one pass (`_write_ratelimit_headers`).
    The before-request check reuses what it filtered for the route last time
    (`_Limiter__filter_limits`), and the request's limiter state is reached in one step
    (`context`): finding 45.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Before any limit is registered: the route memos must see every registration.
        resolve_limits_once_per_route(self)

    def _check_request_limit(
        self, callable_name: str | None = None, in_middleware: bool = True
    ) -> None:
        if _is_exempt():
            return
        super()._check_request_limit(callable_name, in_middleware)

    @property
    def context(self) -> LimiterContext:
        """The stock property's state, found with one look-up of the request context.

        The stock one goes through Flask's request-context proxy three times (hasattr,
        setattr, getattr) and is read about seven times a request: ~2 % of a `/users/me`'s
        instructions. Outside a request it raises as the stock one does.
        """
        ctx = request_ctx._get_current_object()  # type: ignore[attr-defined]
        contexts = getattr(ctx, "_limiter_request_context", None)
        if contexts is None:
            contexts = ctx._limiter_request_context = defaultdict(LimiterContext)
        return contexts[self]

    def _Limiter__filter_limits(  # noqa: N802 - overrides the stock name-mangled method
        self,
        endpoint: str | None,
        blueprint: str | None,
        callable_name: str | None,
        in_middleware: bool = False,
    ) -> list[Any]:
        """The stock filter, its before-request answer kept per route.

        For the before-request check of a route, with the storage up, the limiter enabled and
        no request filters, the stock filter's answer and what it marks as seen depend only
        on registrations, so the first answer is kept in the route memos
        (app/middlewares/rate_limit_resolution.py), which every registration clears. Each
        limit's key, exemption and cost are still evaluated per request, afterwards, by the
        stock evaluation. Every other call (route decorators, the in-memory fallback) is stock.
        """
        stock = _STOCK_FILTER
        if not (
            in_middleware
            and callable_name is None
            and endpoint
            and self.enabled
            and self.initialized
            and not self._storage_dead
            and not self._request_filters
        ):
            return stock(self, endpoint, blueprint, callable_name, in_middleware)
        seen = self.context.seen_limits
        if seen:
            return stock(self, endpoint, blueprint, callable_name, in_middleware)

        def first_answer() -> tuple[tuple[Any, ...], tuple[Any, ...]]:
            limits = stock(self, endpoint, blueprint, None, True)
            return tuple(limits), tuple(seen)

        limits, marked_seen = self.limit_manager.remembered((endpoint, blueprint), first_answer)
        # What the stock filter does to the request's state (a no-op if it has just run).
        seen.update(marked_seen)
        return list(limits)

    def init_app(self, app: Flask) -> None:
        super().init_app(app)
        # flask-limiter registers its header writer as `partial(Limiter.__inject_headers,
        # self)`. Ours replaces it and goes first in the list, so it runs after every other
        # after-request hook (Flask runs them in reverse): its six headers are appended after
        # the others have looked theirs up, instead of lengthening each of their scans
        # (`app/middlewares/headers.py`; -1.25 % instructions per `/users/me`, finding 43).
        hooks = app.after_request_funcs.setdefault(None, [])
        for index, hook in enumerate(hooks):
            if getattr(hook, "func", None) is _STOCK_HEADER_WRITER and hook.args == (self,):
                del hooks[index]
                hooks.insert(0, self._write_ratelimit_headers)
                break
        if self._write_ratelimit_headers not in hooks:
            # A flask-limiter that registers its writer otherwise: fail at start-up, not
            # with responses that silently lack their headers.
            raise RuntimeError("flask-limiter's rate-limit header hook was not found")

    def _write_ratelimit_headers(self, response: Response) -> Response:
        """The stock header writer's work, with the draft names and Retry-After on a 429 only.

        The stock one writes `X-RateLimit-*` and a Retry-After on every response (overriding
        one a 503 set); a second hook then read them back to add the draft names. Werkzeug
        finds a header by lower-casing every name before it, so each look-up or set is a scan
        of the whole list (~20 headers): here the window is read once, the names present are
        read once, and absent headers are appended (finding 43).
        """
        self._Limiter__check_conditional_deductions(response)  # type: ignore[attr-defined]
        header_limit = self.current_limit
        if self.enabled and self._headers_enabled and header_limit:
            self._add_ratelimit_headers(header_limit, response)
        return response

    def _add_ratelimit_headers(self, header_limit: RequestLimit, response: Response) -> None:
        try:
            reset_time, remaining = header_limit.window
        except Exception:  # noqa: BLE001
            # As the stock writer: a storage error here moves the limiter to memory once.
            if self._in_memory_fallback_enabled and not self._storage_dead:
                self.logger.warning(
                    "Rate limit storage unreachable - falling back to in-memory storage"
                )
                self._storage_dead = True
                self._add_ratelimit_headers(header_limit, response)
                return
            if not self._swallow_errors:
                raise
            self.logger.exception("Failed to update rate limit headers. Swallowing error")
            return
        reset_at = int(reset_time + 1)
        now = time.time()
        limit = str(header_limit.limit.amount)
        headers = response.headers
        headers.add("X-RateLimit-Limit", limit)
        headers.add("X-RateLimit-Remaining", str(remaining))
        headers.add("X-RateLimit-Reset", str(reset_at))
        draft_values = (limit, str(remaining), str(max(0, reset_at - int(now))))
        write_headers(headers, zip(_DRAFT_HEADER_NAMES, draft_values, strict=True))
        if response.status_code == 429:
            retry_at = max(reset_at, _retry_at(headers.get("Retry-After"), now))
            headers["Retry-After"] = str(int(retry_at - now))


# The name-mangled private methods, reached once at import (a pinned version's internals).
_STOCK_HEADER_WRITER = Limiter._Limiter__inject_headers  # type: ignore[attr-defined]
_STOCK_FILTER = Limiter._Limiter__filter_limits  # type: ignore[attr-defined]


def _retry_at(retry_after: str | None, now: float) -> int:
    """The epoch second a Retry-After (delta seconds or HTTP date) names; 0 when none."""
    if retry_after is None:
        return 0
    if retry_after.isdigit():
        return int(now) + int(retry_after)
    moment = parse_date(retry_after)
    return int(moment.timestamp()) if moment is not None else 0


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
        # The fallback: the same limits, counted in this process while Redis is away.
        in_memory_fallback_enabled=True,
        # A storage error anywhere else (e.g. counting a failed login after the response)
        # is logged and ignored: limits must never fail a request.
        swallow_errors=True,
        on_breach=_on_breach,
        request_identifier=_request_identifier,
    )
    return app_limiter


def limiter() -> Limiter:
    """The current app's Limiter."""
    return current_app.extensions[EXTENSION_KEY]


def init_rate_limits(app: Flask, app_settings: Settings) -> None:
    """Create this app's Limiter; call before the other request hooks so every request counts."""
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
