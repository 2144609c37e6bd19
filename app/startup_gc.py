"""The garbage collector paused while the app is imported and built.

Start-up allocates ~150,000 objects that live as long as the process (modules, classes,
SQLAlchemy and marshmallow structures, the OpenAPI spec) and almost no garbage, yet the
collector ran ~300 times during it, each pass scanning what had been built so far: 0.13-0.20 s
of a 1.1-1.5 s cold start on a 2-core VM (docs/performance.md). Once the app is built the
collector works as before; under gunicorn the worker then freezes the start-up objects
(app.server.freeze_live_objects) so that later collections skip them.

A pause alone defers the work rather than saving it: everything built during it is still in
the youngest generation afterwards, so the first automatic collection scans it all at once
(~65 ms after `import app` on a 2-core VM, finding 31). The imports' objects (modules,
classes, functions) are frozen at the end of their pause instead: they are never garbage.
The app built by create_app is not, since tests and tools build many apps in one process and
drop them; a gunicorn worker freezes it once loaded.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def collector_paused(*, freeze_after: bool = False) -> Iterator[None]:
    """No automatic collection inside the block; nested or already-disabled uses are no-ops.

    `freeze_after`: if the block succeeds, move every object alive then out of the collector's
    sight (`gc.freeze`), for blocks that build only what lives as long as the process.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
        if was_enabled and freeze_after:
            gc.freeze()
    finally:
        if was_enabled:
            gc.enable()
