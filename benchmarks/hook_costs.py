"""Where a request's CPU goes: the view and every Flask hook timed in-process, one by one.

`make bench` says how fast the stack is against its baselines; this says where the time goes
(docs/performance.md, "The fixed cost of every request"). One process and no network load: the
app, with the benchmark's production settings (PostgreSQL, Redis, rate limits, JSON logs into a
file), is called as a WSGI callable with a prebuilt request. Every before-request,
after-request and teardown function and every view is wrapped with a CPU-time counter
(`time.thread_time_ns`, so waits on PostgreSQL or Redis are not counted); what no hook holds
(Werkzeug, ProxyFix, Flask's dispatch and contexts, the wrappers themselves) is the rest.

    .venv-bench/bin/python -m benchmarks.hook_costs                    # /health/live and /users/me
    .venv-bench/bin/python -m benchmarks.hook_costs --requests 5000 --path /api/v1/users/me

Read the shares, not the absolute figures: a shared host's speed drifts between runs.
"""

from __future__ import annotations

import argparse
import functools
import io
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Mapping
from contextlib import redirect_stdout
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from flask import Flask
from werkzeug.test import EnvironBuilder

from benchmarks import run, servers

# The docstring's first line, kept apart because `python -OO` drops docstrings.
SUMMARY = "Where a request's CPU goes: the view and every Flask hook timed in-process, one by one."

DEFAULT_PATHS = ("/health/live", "/api/v1/users/me")
SEED_PASSWORD = "hook costs: a long enough passphrase"
# What nginx adds and a browser client sends: the benchmark's loads' own headers.
CLIENT_HEADERS = dict(run.CLIENT_HEADERS)


@dataclass(frozen=True)
class HookCosts:
    path: str
    status: str
    requests: int
    total_us: float
    # (hook, microseconds per request), most expensive first.
    hooks: list[tuple[str, float]]

    @property
    def rest_us(self) -> float:
        return self.total_us - sum(cost for _, cost in self.hooks)


def _hook_name(kind: str, function: Callable) -> str:
    target = function.func if isinstance(function, functools.partial) else function
    return f"{kind} {getattr(target, '__qualname__', repr(target))}"


def _timed(name: str, function: Callable, spent_ns: Counter) -> Callable:
    @functools.wraps(function)
    def timed(*args: Any, **kwargs: Any) -> Any:
        started = time.thread_time_ns()
        try:
            return function(*args, **kwargs)
        finally:
            spent_ns[name] += time.thread_time_ns() - started

    return timed


def instrument(app: Flask) -> Counter:
    """Wrap the app's hooks and views (in place) with CPU counters; returns the counter."""
    spent_ns: Counter = Counter()
    for kind, registry in (
        ("before", app.before_request_funcs),
        ("after", app.after_request_funcs),
        ("teardown", app.teardown_request_funcs),
    ):
        for key, functions in registry.items():
            registry[key] = [_timed(_hook_name(kind, f), f, spent_ns) for f in functions]
    app.teardown_appcontext_funcs[:] = [
        _timed(_hook_name("teardown-app", f), f, spent_ns) for f in app.teardown_appcontext_funcs
    ]
    for endpoint, view in list(app.view_functions.items()):
        app.view_functions[endpoint] = _timed(f"view {endpoint}", view, spent_ns)
    return spent_ns


def measure(
    app: Flask,
    spent_ns: Counter,
    path: str,
    headers: Mapping[str, str],
    requests: int,
    warmup: int = 300,
) -> HookCosts:
    """CPU per request of `requests` GETs of `path`, after `warmup` untimed ones."""
    environ = EnvironBuilder(
        path=path, headers=dict(headers), environ_base={"REMOTE_ADDR": "127.0.0.1"}
    ).get_environ()
    statuses: list[str] = []

    def start_response(status: str, response_headers: list, exc_info: Any = None) -> None:
        statuses.append(status)

    def one_request() -> None:
        body = app({**environ, "wsgi.input": io.BytesIO(b"")}, start_response)
        try:
            for _ in body:
                pass
        finally:
            # As a WSGI server does: an iterable may have no close (a list, say).
            close = getattr(body, "close", None)
            if close is not None:
                close()

    for _ in range(warmup):
        one_request()
    spent_ns.clear()
    started = time.thread_time_ns()
    for _ in range(requests):
        one_request()
    total_us = (time.thread_time_ns() - started) / requests / 1000
    hooks = [(name, ns / requests / 1000) for name, ns in spent_ns.most_common()]
    return HookCosts(path, statuses[-1], requests, total_us, hooks)


def format_costs(costs: HookCosts) -> str:
    lines = [
        f"GET {costs.path} -> {costs.status}: {costs.total_us:.0f} us of CPU per request "
        f"({costs.requests} requests)"
    ]
    for name, cost in costs.hooks:
        lines.append(f"  {cost:7.1f} us  {100 * cost / costs.total_us:4.1f} %  {name}")
    rest = costs.rest_us
    if not costs.hooks:
        # A plain /health/live never reaches Flask (app/monitoring/live_probe.py).
        lines.append(f"  {rest:7.1f} us  100.0 %  answered ahead of Flask: no hook ran")
        return "\n".join(lines)
    lines.append(
        f"  {rest:7.1f} us  {100 * rest / costs.total_us:4.1f} %  "
        "rest: Werkzeug, ProxyFix, Flask dispatch and contexts, the timers"
    )
    return "\n".join(lines)


def seed_access_token(app: Flask) -> str:
    """Register and log in one user through the API; its access token."""
    client = app.test_client()
    email = f"hook-costs-{time.time_ns()}@example.com"
    credentials = {"email": email, "password": SEED_PASSWORD}
    for url in ("/api/v1/users", "/api/v1/auth/login"):
        response = client.post(url, json=credentials, headers=CLIENT_HEADERS)
        if response.status_code >= 300:
            raise RuntimeError(f"{url} answered {response.status_code}: {response.get_data()!r}")
    return response.get_json()["data"]["access_token"]


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=SUMMARY)
    parser.add_argument(
        "--path", action="append", help="repeatable; default: " + ", ".join(DEFAULT_PATHS)
    )
    parser.add_argument("--requests", type=int, default=2000)
    args, rest = parser.parse_known_args(argv)
    # The benchmark's own options for what the app connects to (--redis-url, ...).
    args.bench = run.parse_args(rest)
    return args


def main(argv: list[str] | None = None) -> int:
    from app import create_app
    from app.server import freeze_live_objects

    args = parse_args(argv)
    with (
        tempfile.TemporaryDirectory(prefix="steadfast-hooks-") as workdir,
        servers.temporary_database(args.bench.postgres_admin_url) as database_url,
    ):
        environment = run.bench_environment(args.bench, database_url, Path(workdir))
        servers.compile_bytecode(optimize=sys.flags.optimize)
        servers.migrate(environment)
        log_path = Path(workdir) / "steadfast.log"
        with log_path.open("w") as log, redirect_stdout(log):
            app = create_app(environment)
            headers = {**CLIENT_HEADERS, "Authorization": f"Bearer {seed_access_token(app)}"}
            spent_ns = instrument(app)
            # As a gunicorn worker does once the app is loaded (finding 17).
            freeze_live_objects()
            results = [
                measure(app, spent_ns, path, headers, args.requests)
                for path in args.path or DEFAULT_PATHS
            ]
    for costs in results:
        print(format_costs(costs))
    return 0


if __name__ == "__main__":
    sys.exit(main())
