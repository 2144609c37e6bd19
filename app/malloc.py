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
_PAGE_SIZE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


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


def resident_bytes() -> int | None:
    """This process's resident memory (`/proc/self/statm`); None where there is no /proc."""
    try:
        with open("/proc/self/statm", "rb") as statm:
            return int(statm.read().split()[1]) * _PAGE_SIZE
    except (OSError, ValueError, IndexError):
        return None


class ResidentGrowthTrimmer:
    """Gives free heap pages back when a second argon2id buffer has become resident.

    After an operation the process normally holds its base memory plus one freed buffer that
    the next operation reuses. Request threads allocate from the same heap meanwhile; when
    some of their blocks land where the buffer was, the next buffer goes elsewhere and the
    old one's pages stay resident, for as long as the load lasts (a 2-minute soak: +19.5 MiB,
    one buffer, in one worker of two, in about one run in five). Watching the heap's extent
    caught the case where the heap grows by a buffer, not a buffer placed again inside the
    extent after its old place was reused: resident memory catches both.

    The floor is the lowest resident size seen after an operation since the last trim; more
    than `threshold_bytes` above it means that much free memory is resident, and
    `malloc_trim` returns free pages anywhere in the heap. The next operation sets the floor
    again, so memory that is live (a trim cannot return it) raises the floor instead of being
    trimmed at every operation. Reading statm costs ~10 us, beside a 20-40 ms operation.
    """

    def __init__(self, threshold_bytes: int) -> None:
        self.threshold_bytes = threshold_bytes
        self._floor: int | None = None

    def after_operation(self, resident: int | None = None) -> bool:
        """Call after each operation; True if resident memory had grown and was trimmed."""
        resident = resident_bytes() if resident is None else resident
        if resident is None:
            return False
        if self._floor is None or resident < self._floor:
            self._floor = resident
            return False
        if resident <= self._floor + self.threshold_bytes:
            return False
        self._floor = None
        return release_free_memory()
