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


class _MallInfo2(ctypes.Structure):
    # glibc's struct mallinfo2 (2.33+): every field a size_t.
    _fields_ = [
        (name, ctypes.c_size_t)
        for name in (
            "arena",
            "ordblks",
            "smblks",
            "hblks",
            "hblkhd",
            "usmblks",
            "fsmblks",
            "uordblks",
            "fordblks",
            "keepcost",
        )
    ]


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


def heap_extent() -> int | None:
    """Bytes of heap the allocator holds from the OS (`mallinfo2().arena`); None where unknown.

    About 5 us: cheap beside an argon2id operation, not something to call per request.
    """
    libc = _glibc()
    if libc is None or not hasattr(libc, "mallinfo2"):
        return None
    libc.mallinfo2.restype = _MallInfo2
    return int(libc.mallinfo2().arena)


class HeapGrowthTrimmer:
    """Gives free heap pages back when the heap outgrows its largest extent so far.

    An argon2id operation's buffer (19 MiB) normally reuses the one the previous operation
    freed. But request threads allocate from the same heap meanwhile; when some of their
    blocks land inside the freed buffer, the next one no longer fits there and the heap grows
    by a whole buffer, the old one's pages staying resident: a worker then holds two buffers
    under load, for as long as the load lasts (seen once in a 2-minute soak: +19,528 KiB, one
    buffer). Trimming at that moment returns the free pages at once, anywhere in the heap.

    Only growth beyond the largest extent seen counts: the heap shrinking on an idle release
    and growing back to where it was is the normal cycle and costs no trim.
    """

    def __init__(self, threshold_bytes: int) -> None:
        self.threshold_bytes = threshold_bytes
        self._largest = heap_extent()

    def after_operation(self, extent: int | None = None) -> bool:
        """Call after each operation; True if the heap had outgrown itself and was trimmed."""
        extent = heap_extent() if extent is None else extent
        if extent is None:
            return False
        if self._largest is None or extent <= self._largest + self.threshold_bytes:
            self._largest = max(extent, self._largest or 0)
            return False
        self._largest = extent
        return release_free_memory()
