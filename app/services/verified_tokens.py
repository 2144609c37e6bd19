"""Access tokens an app verified, kept until they expire (docs/performance.md, finding 46).

A client sends the same access token with every request for its lifetime, and verifying it
again gives the same answer each time: HS256 is deterministic and an app's secret does not
change while it runs, so only the passing of time can turn an accepted token into a refused
one. A remembered token is therefore accepted only while its expiry and issue time would
still pass PyJWT's own checks; past them it is verified again, and refused the same way as
before. Revocation, the user's state and the password-change cut-off are not remembered:
they are asked on every request, as they always were.
"""

from __future__ import annotations

import threading
import time
from typing import Generic, Protocol, TypeVar

# About 1 KiB a token with its claims: at most ~1 MiB a worker.
DEFAULT_CAPACITY = 1024


class TimedClaims(Protocol):
    @property
    def issued_at(self) -> float: ...

    @property
    def expires_at(self) -> int: ...


Claims = TypeVar("Claims", bound=TimedClaims)


def still_valid(claims: TimedClaims, now: float) -> bool:
    """PyJWT's verdict on `exp` and `iat` at `now` (no leeway): expired at `exp`, not valid
    before `iat` (compared as an integer, as PyJWT does)."""
    return int(claims.issued_at) <= now < claims.expires_at


class VerifiedTokens(Generic[Claims]):
    """Token string -> its verified claims; the oldest entry goes first when full.

    Read without a lock (a dict look-up is atomic under the GIL); every change takes it, so an
    eviction's walk to the oldest entry never meets a dict that changed under it.
    """

    def __init__(self, capacity: int = DEFAULT_CAPACITY) -> None:
        if capacity < 1:
            raise ValueError("capacity must be at least 1")
        self.capacity = capacity
        self._claims: dict[str, Claims] = {}
        self._lock = threading.Lock()

    def get(self, token: str) -> Claims | None:
        """The claims `token` was verified with, if they would still pass; else None."""
        claims = self._claims.get(token)
        if claims is None:
            return None
        if not still_valid(claims, time.time()):
            with self._lock:
                self._claims.pop(token, None)
            return None
        return claims

    def remember(self, token: str, claims: Claims) -> None:
        with self._lock:
            if token not in self._claims:
                while len(self._claims) >= self.capacity:
                    del self._claims[next(iter(self._claims))]
            self._claims[token] = claims

    def __len__(self) -> int:
        return len(self._claims)
