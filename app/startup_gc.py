"""The garbage collector paused while the app is imported and built.

Start-up allocates ~150,000 objects that live as long as the process (modules, classes,
SQLAlchemy and marshmallow structures, the OpenAPI spec) and almost no garbage, yet the
collector ran ~300 times during it, each pass scanning what had been built so far: 0.13-0.20 s
of a 1.1-1.5 s cold start on a 2-core VM (docs/performance.md). Once the app is built the
collector works as before; under gunicorn the worker then freezes the start-up objects
(app.server.freeze_live_objects) so that later collections skip them.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def collector_paused() -> Iterator[None]:
    """No automatic collection inside the block; nested or already-disabled uses are no-ops."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()
