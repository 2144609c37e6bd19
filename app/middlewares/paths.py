"""URL path prefixes that match a whole path segment, for the middlewares' exemptions."""

from __future__ import annotations


class PathPrefixes:
    """Paths at or below any of `prefixes`: "/health" matches "/health" and "/health/live",
    not "/healthz". Worked out once, so a request pays one set lookup and one startswith."""

    def __init__(self, *prefixes: str) -> None:
        self._paths = frozenset(prefixes)
        self._below = tuple(prefix + "/" for prefix in prefixes)

    def match(self, path: str) -> bool:
        return path in self._paths or path.startswith(self._below)


# Load balancers and Prometheus probe these, often over plain HTTP inside the network: they are
# never rate-limited (app/middlewares/rate_limits.py) nor redirected to HTTPS (security.py).
PROBE_PATHS = PathPrefixes("/health", "/metrics")
