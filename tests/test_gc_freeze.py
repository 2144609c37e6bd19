"""Start-up objects are frozen out of the garbage collector in each gunicorn worker."""

from __future__ import annotations

import gc

from app.server import freeze_live_objects


def test_freezing_moves_the_live_objects_out_of_the_collected_generations():
    kept = [{"startup": index} for index in range(1000)]
    try:
        freeze_live_objects()

        assert gc.get_freeze_count() >= len(kept)
        # What a request allocates afterwards is still collected, cycles included.
        before = gc.get_count()[0]
        cycle: list = []
        cycle.append(cycle)
        assert gc.get_count()[0] > before
        del cycle
        assert gc.collect() >= 1
    finally:
        gc.unfreeze()
