"""glibc malloc controls (through ctypes) that keep a worker's memory down; no-ops elsewhere.

Why they are needed: argon2id allocates `memory_cost` (19 MiB) per hash, and glibc keeps a
freed block of that size rather than return it to the OS. That is what makes a burst of
logins cheap (the block is reused, no page faults), but a quiet worker then holds 19 MiB it
does not use. `malloc_trim` hands free memory back, but only the main arena's top is trimmed:
a block freed in a thread's own arena stays resident. With one arena for the whole process,
the hashing thread allocates from the main arena, and `release_free_memory` can return its
block once the thread is idle (app/services/passwords.py). One arena also stops each request
thread from keeping freed memory in an arena of its own. The cost is a shared arena lock,
which Python threads hardly contend for: they allocate while holding the GIL.

glibc only: musl (Alpine) and other C libraries have neither function and need neither.
"""

from __future__ import annotations

import ctypes
import os
from functools import cache
from typing import Any

# mallopt parameter (glibc's malloc.h).
M_ARENA_MAX = -8


@cache
def _glibc() -> Any | None:
    try:
        if not os.confstr("CS_GNU_LIBC_VERSION"):
            return None
        # The C library the interpreter already uses, not a second copy.
        libc = ctypes.CDLL(None)
    except (ValueError, OSError, AttributeError):
        return None
    if not (hasattr(libc, "mallopt") and hasattr(libc, "malloc_trim")):
        return None
    return libc


def use_one_malloc_arena() -> bool:
    """Make every thread created from now on allocate from the main arena.

    Call it before the process starts threads (gunicorn's master, before forking): a thread
    that already has an arena of its own keeps it. True when the setting was applied.
    """
    libc = _glibc()
    return bool(libc and libc.mallopt(M_ARENA_MAX, 1))


def release_free_memory() -> bool:
    """Return free heap memory to the OS (glibc `malloc_trim(0)`); True if any was released."""
    libc = _glibc()
    return bool(libc and libc.malloc_trim(0))
