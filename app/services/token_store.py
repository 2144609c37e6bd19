"""Where revoked token ids and refresh-token families live: Redis when configured, else memory.

Redis makes a revocation hold across workers and instances; the in-memory store is for
development and tests without Redis, where one process is all there is (WEB_CONCURRENCY
defaults to 1 without REDIS_URL, app/config.py; more workers are warned about at start-up).
"""

from __future__ import annotations

import threading
import time
from typing import Protocol

from redis import Redis
from redis.exceptions import RedisError

from app.errors import ServiceUnavailableError

KEY_PREFIX = "steadfast:tokens:"


class TokenStore(Protocol):
    def revoke(self, jti: str, ttl_s: int) -> None: ...

    def is_revoked(self, jti: str) -> bool: ...

    def claim_once(self, jti: str, ttl_s: int) -> bool:
        """Mark a single-use token as used; True only for the first caller, atomically."""
        ...

    def revoke_family(self, family_id: str, ttl_s: int) -> None: ...

    def is_family_revoked(self, family_id: str) -> bool: ...

    def is_token_or_family_revoked(self, jti: str, family_id: str | None) -> bool:
        """The check every authenticated request makes, in one call (one Redis round trip)."""
        ...

    def revocation_keys(self, jti: str, family_id: str | None) -> list[str] | None:
        """Redis keys of which any existing means revoked, so that a caller already going to
        Redis (the rate limiter) can ask along; None for a store outside Redis."""
        ...


class MemoryTokenStore:
    def __init__(self) -> None:
        self._expiry_by_key: dict[str, float] = {}
        self._lock = threading.Lock()

    def _set(self, key: str, ttl_s: int, only_if_absent: bool = False) -> bool:
        now = time.monotonic()
        with self._lock:
            expiry = self._expiry_by_key.get(key)
            if only_if_absent and expiry is not None and expiry > now:
                return False
            self._expiry_by_key[key] = now + max(ttl_s, 1)
            if len(self._expiry_by_key) > 10_000:
                self._expiry_by_key = {k: v for k, v in self._expiry_by_key.items() if v > now}
            return True

    def _has(self, key: str) -> bool:
        expiry = self._expiry_by_key.get(key)
        return expiry is not None and expiry > time.monotonic()

    def revoke(self, jti: str, ttl_s: int) -> None:
        self._set(f"revoked:{jti}", ttl_s)

    def is_revoked(self, jti: str) -> bool:
        return self._has(f"revoked:{jti}")

    def claim_once(self, jti: str, ttl_s: int) -> bool:
        return self._set(f"used:{jti}", ttl_s, only_if_absent=True)

    def revoke_family(self, family_id: str, ttl_s: int) -> None:
        self._set(f"family:{family_id}", ttl_s)

    def is_family_revoked(self, family_id: str) -> bool:
        return self._has(f"family:{family_id}")

    def is_token_or_family_revoked(self, jti: str, family_id: str | None) -> bool:
        return self.is_revoked(jti) or (family_id is not None and self.is_family_revoked(family_id))

    def revocation_keys(self, jti: str, family_id: str | None) -> list[str] | None:
        return None


def _revoked_key(jti: str) -> str:
    return f"{KEY_PREFIX}revoked:{jti}"


def _family_key(family_id: str) -> str:
    return f"{KEY_PREFIX}family:{family_id}"


class RedisTokenStore:
    """Fails closed: if Redis cannot say a token is live, the request gets a 503, not access."""

    def __init__(self, redis: Redis) -> None:
        self._redis = redis

    def _call(self, operation, *args):
        try:
            return operation(*args)
        except RedisError as error:
            raise ServiceUnavailableError(
                "Token checks are temporarily unavailable. Please try again later."
            ) from error

    def revoke(self, jti: str, ttl_s: int) -> None:
        self._call(self._redis.set, _revoked_key(jti), 1, max(ttl_s, 1))

    def is_revoked(self, jti: str) -> bool:
        return bool(self._call(self._redis.exists, _revoked_key(jti)))

    def claim_once(self, jti: str, ttl_s: int) -> bool:
        key = f"{KEY_PREFIX}used:{jti}"
        return bool(self._call(lambda: self._redis.set(key, 1, ex=max(ttl_s, 1), nx=True)))

    def revoke_family(self, family_id: str, ttl_s: int) -> None:
        self._call(self._redis.set, _family_key(family_id), 1, max(ttl_s, 1))

    def is_family_revoked(self, family_id: str) -> bool:
        return bool(self._call(self._redis.exists, _family_key(family_id)))

    def is_token_or_family_revoked(self, jti: str, family_id: str | None) -> bool:
        # EXISTS with several keys counts those present: one round trip for both checks.
        return bool(self._call(self._redis.exists, *self.revocation_keys(jti, family_id)))

    def revocation_keys(self, jti: str, family_id: str | None) -> list[str]:
        keys = [_revoked_key(jti)]
        if family_id is not None:
            keys.append(_family_key(family_id))
        return keys
