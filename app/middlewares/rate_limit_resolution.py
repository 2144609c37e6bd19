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
"""

from __future__ import annotations

from typing import Any

from flask_limiter import Limiter
from flask_limiter._manager import LimitManager

_Resolved = tuple[list[Any], ...]


class RouteCachingLimitManager(LimitManager):
    """flask-limiter's LimitManager whose `resolve_limits` answers from a per-route memo."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._resolved: dict[tuple[Any, ...], _Resolved] = {}

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
        key = (endpoint, blueprint, callable_name, in_middleware, marked_for_limiting)
        resolved = self._resolved.get(key)
        if resolved is None:
            resolved = super().resolve_limits(
                app, endpoint, blueprint, callable_name, in_middleware, marked_for_limiting
            )
            self._resolved[key] = resolved
        # Copies: a caller that changes its lists must not change the next request's.
        return tuple(list(limits) for limits in resolved)

    def forget_resolved(self) -> None:
        self._resolved.clear()

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
