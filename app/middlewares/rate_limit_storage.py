"""The rate limiter's Redis storage: a hit and the window for its headers in one round trip.

Why a storage of our own: with `limits`' RedisStorage, flask-limiter's fixed window costs three
Redis round trips per request: the hit (an EVALSHA of INCRBY + EXPIRE), then, to write the
RateLimit headers after the view, `get_window_stats`, which asks Redis again for the count
(GET) and for the time left (TTL). Neither library has an option to take the window from the
hit. A custom storage is their supported extension point: `limits` registers every Storage
subclass under its STORAGE_SCHEME, and flask-limiter builds the storage from `storage_uri`
(`steadfast+redis://...`, see `limiter_storage_uri`). Nothing of either library is patched,
and the fixed-window strategy, the in-memory fallback and its return to Redis stay theirs.

What changes: the increment script also returns the key's TTL, and the count and the reset
time are remembered for the rest of the request; `get` (the count) and `get_expiry` (the
reset time) answer from there. A key not hit in this request (the per-account failed-login
limit is only tested before the view and hit after a 401) is read with one script returning
both, so its headers cost one round trip, not two. The headers show the window as this
request left it, which is what flask-limiter documents ("remaining is after deduction for the
current request"); a concurrent request elsewhere may have counted since, as with GET + TTL.

The memory lasts one request: it is kept in the WSGI environ, which exists per request
whatever the server's threads, and is dropped with it. Outside a request (CLI, scripts) every
call goes to Redis as in RedisStorage. Keys, values and expiries in Redis are unchanged, so
instances running the plain RedisStorage share the same counters.

Read-along: a request whose next step would ask Redis whether some keys exist (an
authenticated request's revocation check, app/middlewares/auth.py) can register them with
`read_along` before the limiter runs; the first increment of the request then counts them in
the same script, and `ReadAlong.present` holds the answer. One round trip instead of two per
authenticated request. Nothing is read along when the limiter does not reach Redis (exempt
path, memory fallback): the caller then asks Redis itself, as before.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, NamedTuple

from flask import has_request_context, request
from limits.storage import RedisStorage

SCHEME_PREFIX = "steadfast+"
READ_ALONG_ENVIRON_KEY = "steadfast.rate_limit_read_along"

# limits' incr_expire.lua, plus the TTL in the same answer, and how many of the other keys
# (KEYS[2]...: a read-along, none otherwise) exist.
INCREMENT_SCRIPT = """
local amount = tonumber(ARGV[2])
local current = redis.call("incrby", KEYS[1], amount)
if tonumber(current) == amount then
    redis.call("expire", KEYS[1], ARGV[1])
end
local present = 0
if #KEYS > 1 then
    present = redis.call("exists", unpack(KEYS, 2))
end
return {current, redis.call("ttl", KEYS[1]), present}
"""

# GET and TTL as one command, and consistent with each other.
WINDOW_SCRIPT = """
return {tonumber(redis.call("get", KEYS[1])) or 0, redis.call("ttl", KEYS[1])}
"""


class Window(NamedTuple):
    """A fixed-window counter as a request last saw it in Redis."""

    count: int
    reset_at: float  # epoch seconds, as RedisStorage.get_expiry returns it


@dataclass
class ReadAlong:
    """Keys to count with the request's first rate-limit increment; `present` once counted."""

    keys: list[str]
    present: int | None = None


def read_along(keys: list[str]) -> ReadAlong:
    """Have this request's first rate-limit increment also count how many of `keys` exist."""
    entry = ReadAlong(list(keys))
    request.environ[READ_ALONG_ENVIRON_KEY] = entry
    return entry


def _pending_read_along() -> ReadAlong | None:
    if not has_request_context():
        return None
    entry = request.environ.get(READ_ALONG_ENVIRON_KEY)
    return entry if entry is not None and entry.present is None else None


def _window_from(answer: list[Any]) -> Window:
    count, ttl = answer[0], answer[1]
    # TTL is -2 when the key is gone and -1 without an expiry; RedisStorage reads both as 0.
    return Window(int(count), time.time() + max(int(ttl), 0))


class SingleTripRedisStorage(RedisStorage):
    """RedisStorage whose counter increment also answers the window stats of the request."""

    STORAGE_SCHEME = [SCHEME_PREFIX + scheme for scheme in ("redis", "rediss", "redis+unix")]

    def __init__(self, uri: str, **options: Any) -> None:
        # The plain redis URL for redis-py; the prefix only chose this class.
        super().__init__(uri.removeprefix(SCHEME_PREFIX), **options)
        self._environ_key = f"steadfast.rate_limit_windows.{id(self)}"

    def initialize_storage(self, uri: str) -> None:
        super().initialize_storage(uri)
        connection = self.get_connection()
        self.lua_increment_with_window = connection.register_script(INCREMENT_SCRIPT)
        self.lua_window = connection.register_script(WINDOW_SCRIPT)

    def _request_windows(self) -> dict[str, Window] | None:
        if not has_request_context():
            return None
        return request.environ.setdefault(self._environ_key, {})

    def _remember(self, key: str, window: Window) -> Window:
        windows = self._request_windows()
        if windows is not None:
            windows[key] = window
        return window

    def _remembered(self, key: str) -> Window | None:
        windows = self._request_windows()
        return windows.get(key) if windows is not None else None

    def incr(self, key: str, expiry: int, amount: int = 1) -> int:
        extra = _pending_read_along()
        keys = [self.prefixed_key(key), *(extra.keys if extra is not None else ())]
        answer = self.lua_increment_with_window(keys, [expiry, amount])
        if extra is not None:
            extra.present = int(answer[2])
        return self._remember(key, _window_from(answer)).count

    def get(self, key: str) -> int:
        window = self._remembered(key)
        if window is None:
            window = self._remember(key, _window_from(self.lua_window([self.prefixed_key(key)])))
        return window.count

    def get_expiry(self, key: str) -> float:
        window = self._remembered(key)
        if window is None:
            return super().get_expiry(key)
        return window.reset_at

    def clear(self, key: str) -> None:
        super().clear(key)
        windows = self._request_windows()
        if windows is not None:
            windows.pop(key, None)
