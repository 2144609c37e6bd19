"""The background load the soak and fault tests drive: pausing holds every client thread."""

from __future__ import annotations

import threading
import time

import requests

from tests.traffic import BackgroundLoad, Outcome


def test_a_paused_load_finishes_its_steps_and_starts_none_until_resumed():
    under_way = 0
    most_at_once = 0
    lock = threading.Lock()

    def step(client: requests.Session) -> list[Outcome]:
        nonlocal under_way, most_at_once
        with lock:
            under_way += 1
            most_at_once = max(most_at_once, under_way)
        time.sleep(0.02)
        with lock:
            under_way -= 1
        return [Outcome("step", 200, None, 0.02, started_at=time.monotonic())]

    load = BackgroundLoad(step, threads=3).start()
    try:
        time.sleep(0.2)
        load.pause()
        assert under_way == 0
        paused_count = len(load.snapshot())
        time.sleep(0.2)
        assert len(load.snapshot()) == paused_count
        load.resume()
        time.sleep(0.2)
        assert len(load.snapshot()) > paused_count
    finally:
        outcomes = load.stop()
    assert most_at_once == 3
    assert len(outcomes) >= paused_count
