"""Which limits apply to a route, worked out once per route instead of on every request.

flask-limiter resolves a request's limits from scratch each time: it walks the route's
decorated limits, its blueprints' limits and exemptions, calls each limit's provider, parses
the limit strings and builds new `RuntimeLimit` objects, for an answer that only changes when
a limit or an exemption is registered. That is ~5 % of the CPU of a `GET /api/v1/users/me`
(callgrind, docs/performance.md finding 36). The answer is kept per route here and forgotten
whenever the Limiter registers anything.

What stays per request: everything `RuntimeLimit` evaluates lazily (the key function, the
`exempt_when` and `deduct_when` callables, the per-method scope), the storage, and the
in-memory fallback, which flask-limiter decides before it asks for the route's limits.

The limit providers (`lambda: settings().rate_limit_default`) are called once per route; they
read the settings of the app this Limiter belongs to, and an app's settings do not change
(one Limiter per app: app/middlewares/rate_limits.py).

Two more per-route answers are kept the same way and forgotten at the same moments: a route's
exemption scope (flask-limiter works it out on every request only to learn whether meta limits
apply) and what the before-request check filters out for a route
(`ExemptFirstLimiter._Limiter__filter_limits`, app/middlewares/rate_limits.py).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Hashable
from typing import Any, TypeVar

from flask_limiter import Limiter
from flask_limiter._manager import LimitManager

_Resolved = tuple[list[Any], ...]
Answer = TypeVar("Answer")


class RouteCachingLimitManager(LimitManager):
    """flask-limiter's LimitManager whose per-route answers come from memos.

    `resolve_limits` and `exemption_scope` answer from their own; `remembered` keeps the
    Limiter's (the before-request filter). All are forgotten together.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._resolved: dict[Hashable, _Resolved] = {}
        self._exemption_scopes: dict[Hashable, Any] = {}
        self._filtered: dict[Hashable, Any] = {}
        # An answer computed while a registration lands must not be stored after the
        # registration forgot the memos: it would outlive the change it did not see.
        self._generation = 0
        self._lock = threading.Lock()

    def _memoised(
        self, memo: dict[Hashable, Any], key: Hashable, compute: Callable[[], Answer]
    ) -> Answer:
        answer = memo.get(key)
        if answer is None:
            generation = self._generation
            answer = compute()
            with self._lock:
                if generation == self._generation:
                    memo[key] = answer
        return answer

    def remembered(self, key: Hashable, compute: Callable[[], Answer]) -> Answer:
        """The Limiter's own per-route answer for `key`: computed once, then kept."""
        return self._memoised(self._filtered, key, compute)

    def resolve_limits(
        self,
        app: Any,
        endpoint: str | None = None,
        blueprint: str | None = None,
        callable_name: str | None = None,
        in_middleware: bool = False,
        marked_for_limiting: bool = False,
    ) -> _Resolved:
        # `app` is left out of the key: this manager belongs to one Limiter, bound to one app.
        resolved = self._memoised(
            self._resolved,
            (endpoint, blueprint, callable_name, in_middleware, marked_for_limiting),
            lambda: super(RouteCachingLimitManager, self).resolve_limits(
                app, endpoint, blueprint, callable_name, in_middleware, marked_for_limiting
            ),
        )
        # Copies: a caller that changes its lists must not change the next request's.
        return tuple(list(limits) for limits in resolved)

    def exemption_scope(self, app: Any, endpoint: str | None, blueprint: str | None) -> Any:
        # Asked on every request, only to learn whether meta limits apply (there are none
        # here): the view's qualified name and its blueprints' exemptions, ~1.5 % of a
        # `/users/me`'s instructions (finding 45).
        return self._memoised(
            self._exemption_scopes,
            (endpoint, blueprint),
            lambda: super(RouteCachingLimitManager, self).exemption_scope(app, endpoint, blueprint),
        )

    def forget_resolved(self) -> None:
        with self._lock:
            self._generation += 1
            self._resolved.clear()
            self._exemption_scopes.clear()
            self._filtered.clear()

    # Every way flask-limiter registers a limit or an exemption goes through one of these.
    def set_application_limits(self, limits: Any) -> None:
        self.forget_resolved()
        super().set_application_limits(limits)

    def set_default_limits(self, limits: Any) -> None:
        self.forget_resolved()
        super().set_default_limits(limits)

    def add_decorated_limit(self, route: str, limit: Any, override: bool = False) -> None:
        self.forget_resolved()
        super().add_decorated_limit(route, limit, override)

    def add_blueprint_limit(self, blueprint: str, limit: Any) -> None:
        self.forget_resolved()
        super().add_blueprint_limit(blueprint, limit)

    def add_route_exemption(self, route: str, scope: Any) -> None:
        self.forget_resolved()
        super().add_route_exemption(route, scope)

    def add_blueprint_exemption(self, blueprint: str, scope: Any) -> None:
        self.forget_resolved()
        super().add_blueprint_exemption(blueprint, scope)

    def add_endpoint_hint(self, endpoint: str, callable: str) -> None:
        # Called by a decorated view on every one of its requests; only a new hint matters.
        if callable not in self._endpoint_hints.get(endpoint, ()):
            self.forget_resolved()
        super().add_endpoint_hint(endpoint, callable)


def resolve_limits_once_per_route(limiter: Limiter) -> None:
    """Give `limiter` a RouteCachingLimitManager holding what its own manager holds.

    Call right after constructing the Limiter, before `init_app` and before any limit is
    registered on it.
    """
    manager = limiter.limit_manager
    limiter.limit_manager = RouteCachingLimitManager(
        application_limits=manager._application_limits,
        default_limits=manager._default_limits,
        decorated_limits=manager._decorated_limits,
        blueprint_limits=manager._blueprint_limits,
        route_exemptions=manager._route_exemptions,
        blueprint_exemptions=manager._blueprint_exemptions,
    )
