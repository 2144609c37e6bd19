"""Helpers for the deployment tests: worker processes, bounded polling and a steady load."""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests

from tests.processes import REPO_ROOT

ARTIFACTS_DIR = REPO_ROOT / "test-artifacts"


def child_pids(parent_pid: int) -> set[int]:
    """Live (not zombie) children of a process, read from /proc."""
    children = set()
    for stat_path in Path("/proc").glob("[0-9]*/stat"):
        try:
            stat = stat_path.read_text()
        except OSError:
            continue  # the process ended while we looked
        # The command name is in parentheses and may hold spaces: split after it.
        fields = stat.rsplit(")", 1)[1].split()
        state, ppid = fields[0], int(fields[1])
        if ppid == parent_pid and state != "Z":
            children.add(int(stat_path.parent.name))
    return children


def wait_for(condition: Callable[[], Any], what: str, deadline_s: float = 30.0) -> Any:
    """Poll `condition` until it returns something truthy; fail with `what` at the deadline."""
    give_up_at = time.monotonic() + deadline_s
    while time.monotonic() < give_up_at:
        result = condition()
        if result:
            return result
        time.sleep(0.05)
    raise TimeoutError(f"gave up after {deadline_s} s waiting for {what}")


def plain_session() -> requests.Session:
    session = requests.Session()
    session.trust_env = False  # no proxy or CA bundle from the environment for loopback calls
    return session


@dataclass
class SteadyLoad:
    """Client threads requesting `url` back to back until stopped, counting every outcome.

    Half the threads open a new connection per request, half keep one alive (as nginx's
    upstream keepalive does): a reload must not fail either kind.
    """

    url: str
    threads: int = 4
    timeout_s: float = 15.0
    method: str = "GET"
    json_body: Any = None
    new_session: Callable[[], requests.Session] = field(default=lambda: plain_session())
    succeeded: int = 0
    failures: list[str] = field(default_factory=list)
    pids: Counter = field(default_factory=Counter)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _stop: threading.Event = field(default_factory=threading.Event)
    _workers: list[threading.Thread] = field(default_factory=list)

    def __enter__(self) -> SteadyLoad:
        for index in range(self.threads):
            keep_alive = index % 2 == 1
            thread = threading.Thread(target=self._run, args=(keep_alive,), daemon=True)
            thread.start()
            self._workers.append(thread)
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        for thread in self._workers:
            thread.join(timeout=self.timeout_s + 5)

    @property
    def total(self) -> int:
        return self.succeeded + len(self.failures)

    def _run(self, keep_alive: bool) -> None:
        kept = self.new_session() if keep_alive else None
        while not self._stop.is_set():
            session = kept or self.new_session()
            try:
                response = session.request(
                    self.method, self.url, json=self.json_body, timeout=self.timeout_s
                )
                outcome = None if response.status_code == 200 else f"HTTP {response.status_code}"
                pid = response.json()["data"]["pid"] if outcome is None else None
            except (requests.RequestException, ValueError, KeyError) as error:
                outcome, pid = f"{type(error).__name__}: {error}", None
            finally:
                if session is not kept:
                    session.close()
            with self._lock:
                if outcome is None:
                    self.succeeded += 1
                    self.pids[pid] += 1
                else:
                    self.failures.append(outcome)
        if kept:
            kept.close()

    def wait_for_more(self, count: int, deadline_s: float = 30.0) -> None:
        target = self.total + count
        wait_for(lambda: self.total >= target, f"{count} more requests", deadline_s)


def write_artifact(name: str, figures: dict[str, Any]) -> None:
    """Keep a test's measured figures for the closing note (test-artifacts/ is not committed)."""
    ARTIFACTS_DIR.mkdir(exist_ok=True)
    (ARTIFACTS_DIR / name).write_text(json.dumps(figures, indent=2) + "\n")
    print(f"{name}: {json.dumps(figures)}")
