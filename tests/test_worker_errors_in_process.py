"""Crash handling without gunicorn: logged as fatal, and the process is not stopped."""

from __future__ import annotations

import os
import threading

from app.monitoring import crashes


def fail() -> None:
    raise ValueError("broken on purpose")


def test_a_crashed_thread_is_logged_fatal_with_its_stack(app, monkeypatch, log_records):
    monkeypatch.setattr(threading, "excepthook", crashes.handle_thread_exception)

    thread = threading.Thread(target=fail, name="doomed")
    thread.start()
    thread.join(5)

    fatal = [r for r in log_records if r.get("fatal")]
    assert len(fatal) == 1
    assert fatal[0]["level"] == "CRITICAL"
    assert fatal[0]["thread"] == "doomed" and fatal[0]["pid"] == os.getpid()
    assert "uncaught ValueError in thread doomed" in fatal[0]["message"]
    assert "not a gunicorn worker" in fatal[0]["message"]
    assert "broken on purpose" in fatal[0]["stack"]


def test_create_app_installs_the_thread_hook(app):
    assert threading.excepthook is crashes.handle_thread_exception


def test_thread_stacks_cover_every_running_thread():
    stacks = crashes.thread_stacks()

    assert len(stacks) == len(threading.enumerate())
    assert any(name.startswith("MainThread") for name in stacks)
    assert any("test_thread_stacks_cover_every_running_thread" in s for s in stacks.values())
