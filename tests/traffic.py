"""HTTP traffic for cluster, fault and soak tests: timed calls, outcomes tallied, loopback only."""

from __future__ import annotations

import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import requests
from requests.adapters import HTTPAdapter

STRONG_PASSWORD = "correct horse battery staple"
CONNECTION_ERROR = "connection error"


@dataclass(frozen=True)
class Outcome:
    """What a client saw: a status (None when no HTTP answer came), the error code, the time."""

    name: str
    status: int | None
    code: str | None
    elapsed_s: float
    body: Any = None
    upstream: str | None = None
    started_at: float = 0.0  # time.monotonic() when the call began
    headers: dict[str, str] = field(default_factory=dict)

    @property
    def finished_at(self) -> float:
        return self.started_at + self.elapsed_s

    @property
    def label(self) -> str:
        return str(self.status) if self.status is not None else CONNECTION_ERROR


class SourceAddressAdapter(HTTPAdapter):
    """Connect from a chosen loopback address (127.0.0.2, ...): a distinct client IP for
    per-IP rate limits, still without leaving the machine."""

    def __init__(self, source_ip: str, **kwargs: Any) -> None:
        if not source_ip.startswith("127."):
            raise ValueError("traffic stays on loopback")
        self._source_ip = source_ip
        super().__init__(**kwargs)

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        kwargs["source_address"] = (self._source_ip, 0)
        super().init_poolmanager(*args, **kwargs)


def session(source_ip: str | None = None) -> requests.Session:
    client = requests.Session()
    if source_ip is not None:
        client.mount("http://", SourceAddressAdapter(source_ip))
    return client


def call(
    client: requests.Session | Any,
    name: str,
    method: str,
    url: str,
    *,
    timeout: float = 60.0,
    **kwargs: Any,
) -> Outcome:
    started = time.monotonic()
    try:
        response = client.request(method, url, timeout=timeout, **kwargs)
    except requests.RequestException:
        return Outcome(name, None, None, time.monotonic() - started, started_at=started)
    elapsed = time.monotonic() - started
    try:
        body = response.json()
    except ValueError:
        body = response.text[:300]
    code = body.get("code") if isinstance(body, dict) else None
    upstream = response.headers.get("X-Upstream")
    return Outcome(
        name, response.status_code, code, elapsed, body, upstream, started, dict(response.headers)
    )


def unique_email(prefix: str = "load") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}@example.com"


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def register_and_login(base_url: str, client: requests.Session | None = None) -> dict[str, str]:
    """A fresh user and its token pair, made through the API; asserts it worked."""
    client = client or requests.Session()
    email = unique_email("user")
    created = call(
        client,
        "register",
        "POST",
        f"{base_url}/api/v1/users",
        json={"email": email, "password": STRONG_PASSWORD},
    )
    assert created.status == 201, created
    logged_in = call(
        client,
        "login",
        "POST",
        f"{base_url}/api/v1/auth/login",
        json={"email": email, "password": STRONG_PASSWORD},
    )
    assert logged_in.status == 200, logged_in
    return {"email": email, **logged_in.body["data"]}


def in_parallel(calls: list[Callable[[], Outcome]], workers: int = 8) -> list[Outcome]:
    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(lambda make_call: make_call(), calls))


def tally(outcomes: list[Outcome]) -> dict[str, dict[str, int]]:
    """{"register": {"201": 3, "503": 1}, ...}: the status counts a closing note reports."""
    counts: dict[str, Counter] = {}
    for outcome in outcomes:
        counts.setdefault(outcome.name, Counter())[outcome.label] += 1
    return {name: dict(sorted(counter.items())) for name, counter in sorted(counts.items())}


@dataclass
class BackgroundLoad:
    """Threads running `step(client)` in a loop until stopped; every outcome is kept.

    `pause` lets every step under way finish and holds the threads, keeping their clients (and
    so their keep-alive connections, and the workers those landed on); `resume` goes on.
    """

    step: Callable[[requests.Session], list[Outcome]]
    threads: int = 2
    outcomes: list[Outcome] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._stop = threading.Event()
        self._go = threading.Event()
        self._go.set()
        self._lock = threading.Lock()
        self._steps_under_way = 0
        self._step_ended = threading.Condition(self._lock)
        self._threads = [
            threading.Thread(target=self._run, daemon=True) for _ in range(self.threads)
        ]

    def _run(self) -> None:
        client = session()
        while True:
            self._go.wait()
            with self._lock:
                if self._stop.is_set():
                    return
                # Checked under the lock `pause` clears it with: no step starts after a pause.
                if not self._go.is_set():
                    continue
                self._steps_under_way += 1
            results: list[Outcome] = []
            try:
                results = self.step(client)
            finally:
                with self._lock:
                    self._steps_under_way -= 1
                    self.outcomes.extend(results)
                    self._step_ended.notify_all()

    def start(self) -> BackgroundLoad:
        for thread in self._threads:
            thread.start()
        return self

    def pause(self, deadline_s: float = 90.0) -> None:
        """Return once no step is under way and none will start until `resume`."""
        with self._lock:
            self._go.clear()
            if not self._step_ended.wait_for(
                lambda: self._steps_under_way == 0, timeout=deadline_s
            ):
                raise TimeoutError(f"steps still under way after {deadline_s} s")

    def resume(self) -> None:
        self._go.set()

    def stop(self, deadline_s: float = 90.0) -> list[Outcome]:
        self._stop.set()
        self._go.set()
        for thread in self._threads:
            thread.join(timeout=deadline_s)
        with self._lock:
            return list(self.outcomes)

    def snapshot(self) -> list[Outcome]:
        with self._lock:
            return list(self.outcomes)


def started_within(outcomes: list[Outcome], start: float, end: float) -> list[Outcome]:
    """The calls that began and ended inside [start, end] (monotonic clock)."""
    return [o for o in outcomes if o.started_at >= start and o.finished_at <= end]
