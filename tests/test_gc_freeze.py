"""The garbage collector at start-up: paused while the app is built, then its objects frozen."""

from __future__ import annotations

import gc
import subprocess
import sys
from pathlib import Path

import pytest

from app.server import freeze_live_objects
from app.startup_gc import collector_paused

ROOT = Path(__file__).resolve().parent.parent


def test_freezing_moves_the_live_objects_out_of_the_collected_generations():
    kept = [{"startup": index} for index in range(1000)]
    try:
        freeze_live_objects()

        assert gc.get_freeze_count() >= len(kept)
        # What a request allocates afterwards is still collected, cycles included. The count is
        # the process's: with no automatic collection in between and a hundred new objects, a
        # thread left by another test (the loop-lag sampler) cannot hide the increase.
        gc.disable()
        try:
            before = gc.get_count()[0]
            cycles: list[list] = [[] for _ in range(100)]
            for cycle in cycles:
                cycle.append(cycle)
            assert gc.get_count()[0] > before
        finally:
            gc.enable()
        del cycles, cycle
        assert gc.collect() >= 1
    finally:
        gc.unfreeze()


def test_the_collector_is_paused_inside_the_block_and_enabled_again_after_it():
    assert gc.isenabled()
    with collector_paused():
        assert not gc.isenabled()
        with collector_paused():
            assert not gc.isenabled()
        # Leaving the inner block does not end the outer pause.
        assert not gc.isenabled()
    assert gc.isenabled()


def test_a_failure_inside_the_pause_still_enables_the_collector():
    with pytest.raises(RuntimeError), collector_paused():
        raise RuntimeError("start-up failed")
    assert gc.isenabled()


def test_a_collector_disabled_by_the_caller_stays_disabled():
    gc.disable()
    try:
        with collector_paused():
            pass
        assert not gc.isenabled()
    finally:
        gc.enable()


def test_building_the_app_leaves_the_collector_enabled(tmp_path):
    from app import create_app

    create_app({"APP_ENV": "test", "DATABASE_URL": f"sqlite:///{tmp_path}/app.db"})
    assert gc.isenabled()


def test_freeze_after_moves_what_the_block_built_out_of_the_collector_sight():
    try:
        with collector_paused(freeze_after=True):
            built = [{"module": index} for index in range(1000)]
        assert gc.isenabled()
        assert gc.get_freeze_count() >= len(built)
    finally:
        gc.unfreeze()


def test_freeze_after_freezes_nothing_when_the_block_fails_or_the_pause_is_not_its_own():
    gc.unfreeze()
    with pytest.raises(RuntimeError), collector_paused(freeze_after=True):
        raise RuntimeError("import failed")
    with collector_paused(), collector_paused(freeze_after=True):
        pass
    assert gc.get_freeze_count() == 0


def test_importing_the_app_leaves_its_modules_frozen_and_the_collector_on():
    # A fresh interpreter: here the app package was imported long ago.
    script = "import gc, app; print(gc.isenabled(), gc.get_freeze_count(), sum(gc.get_count()))"
    output = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, cwd=ROOT
    ).stdout.split()
    enabled, frozen, pending = output[0], int(output[1]), int(output[2])
    assert enabled == "True"
    # Flask, SQLAlchemy, marshmallow, redis...: over a hundred thousand objects, none of them
    # left in a generation that the first automatic collection would scan.
    assert frozen > 100_000
    assert pending < 1_000
