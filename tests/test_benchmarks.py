"""The benchmark harness itself: its baselines answer like the endpoints they are compared with,
its wrk scripts send what they claim, and its ratios pair what was measured side by side."""

from __future__ import annotations

import importlib
import json
import os
import re
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from werkzeug.serving import make_server
from werkzeug.wrappers import Request as WsgiRequest
from werkzeug.wrappers import Response as WsgiResponse

from app.config import DEV_JWT_SECRET
from app.services.passwords import HASHER
from benchmarks import report, run, servers, wrk
from benchmarks.report import Run, TargetCheck
from benchmarks.run import parse_args as parse_bench_args
from tests.conftest import REPO_ROOT, bearer


def _run(
    round_number: int,
    target: str,
    requests_per_s: float,
    p99_ms: float = 10.0,
    recycles: int = 0,
    scenario: str = "me",
    busiest_worker_share: float | None = None,
) -> Run:
    return Run(
        scenario=scenario,
        target=target,
        round=round_number,
        requests_per_s=requests_per_s,
        p50_ms=1.0,
        p99_ms=p99_ms,
        requests=100,
        status_errors=0,
        socket_errors=0,
        unexpected_errors=0,
        recycles=recycles,
        busiest_worker_share=busiest_worker_share,
    )


def test_ratios_pair_each_round_with_the_baseline_measured_beside_it():
    runs = [
        _run(1, "steadfast", 80),
        _run(1, "reference", 100),
        # A noisy neighbour halves both sides of round 2: the pair's ratio is unchanged.
        _run(2, "steadfast", 40),
        _run(2, "reference", 50),
        _run(3, "steadfast", 90),
        _run(3, "reference", 100),
        _run(4, "steadfast", 70),  # no partner: not paired
    ]
    assert report.paired_ratio(runs, "me", "steadfast", "reference", "requests_per_s") == 0.8


def test_rounds_where_a_worker_was_recycled_are_left_out_while_clean_rounds_remain():
    runs = [
        _run(1, "steadfast", 50),
        _run(1, "reference", 100),
        # The baseline restarted a worker mid-round: a cold start, not its request path.
        _run(2, "steadfast", 50),
        _run(2, "reference", 40, recycles=1),
        _run(3, "steadfast", 60),
        _run(3, "reference", 100),
    ]
    assert report.paired_ratio(runs, "me", "steadfast", "reference", "requests_per_s") == 0.55
    only_recycled = [run for run in runs if run.round == 2]
    assert report.paired_ratio(only_recycled, "me", "steadfast", "reference", "requests_per_s") == (
        50 / 40
    )


def test_a_comparison_gets_extra_rounds_while_its_ratio_rests_on_too_few_clean_ones():
    pair = ("steadfast", "hello")
    runs = [_run(1, "steadfast", 90), _run(1, "hello", 100)]
    # The planned rounds always run.
    assert report.wants_another_round(runs, "me", pair, rounds=3, extra_rounds=3)
    runs += [
        _run(2, "steadfast", 90, recycles=1),
        _run(2, "hello", 100),
        _run(3, "steadfast", 90),
        _run(3, "hello", 100, recycles=2),
    ]
    assert report.clean_rounds(runs, "me", pair) == 1
    assert report.wants_another_round(runs, "me", pair, rounds=3, extra_rounds=3)
    runs += [_run(4, "steadfast", 90), _run(4, "hello", 100)]
    assert report.clean_rounds(runs, "me", pair) == 2
    assert report.wants_another_round(runs, "me", pair, rounds=3, extra_rounds=3)
    runs += [_run(5, "steadfast", 90), _run(5, "hello", 100)]
    # Three clean pairs: enough.
    assert not report.wants_another_round(runs, "me", pair, rounds=3, extra_rounds=3)


def test_extra_rounds_are_bounded_and_only_for_a_comparison_of_two_servers():
    pair = ("steadfast", "hello")
    recycled = [
        _run(round_number, target, 100, recycles=1)
        for round_number in range(1, 4)
        for target in pair
    ]
    assert not report.wants_another_round(recycled, "me", pair, rounds=3, extra_rounds=0)
    more = recycled + [_run(4, target, 100, recycles=1) for target in pair]
    assert report.wants_another_round(recycled, "me", pair, rounds=3, extra_rounds=1)
    assert not report.wants_another_round(more, "me", pair, rounds=3, extra_rounds=1)
    # One server (mixed; login against a hash-only baseline, which is not a server).
    alone = [run for run in recycled if run.target == "steadfast"]
    assert not report.wants_another_round(alone, "me", ("steadfast",), rounds=3, extra_rounds=3)


def test_the_round_options_are_read_and_checked():
    assert parse_bench_args([]).extra_rounds == 3
    assert parse_bench_args([]).rounds == 5
    assert parse_bench_args(["--extra-rounds", "0"]).extra_rounds == 0
    with pytest.raises(SystemExit):
        parse_bench_args(["--extra-rounds", "-1"])


def test_worker_boots_are_counted_by_pid_not_by_log_line():
    # A baseline's master writes each gunicorn line twice: plain, and JSON through the sink
    # the project's gunicorn.conf.py installs when its settings are copied.
    log = "\n".join(
        [
            "[2026-12-06 11:58:21 +0000] [10597] [INFO] Booting worker with pid: 10597",
            '{"message": "Booting worker with pid: 10597", "logger": "gunicorn.error"}',
            "[2026-12-06 11:58:21 +0000] [10599] [INFO] Booting worker with pid: 10599",
            '{"message": "Booting worker with pid: 10599", "logger": "gunicorn.error"}',
            "[2026-12-06 11:59:40 +0000] [10650] [INFO] Booting worker with pid: 10650",
        ]
    )
    assert servers.count_worker_boots(log) == 3
    assert servers.count_worker_boots("[INFO] Starting gunicorn 27.0.1") == 0


def test_a_target_is_met_on_the_right_side_of_its_threshold_and_unknown_without_data():
    assert TargetCheck("throughput", 0.7, ">=", 0.7).met is True
    assert TargetCheck("throughput", 0.69, ">=", 0.7).met is False
    assert TargetCheck("p99", 2.1, "<=", 2.0).met is False
    assert TargetCheck("p99", None, "<=", 2.0).met is None


# What benchmarks.run.argon2_parameters() reports for OWASP's 19 MiB, t=2 argon2id.
OWASP_ARGON2 = {
    "meets_owasp_minimum": True,
    "memory_cost_kib": 19456,
    "time_cost": 2,
    "parallelism": 1,
}


def test_worker_rss_is_judged_against_80_mb_to_the_kib_not_a_rounded_figure():
    from benchmarks import run

    def rss_check(worker_kib: int) -> TargetCheck:
        memory = {"steadfast": [{"rss": round(worker_kib / 1024, 3), "pss": 0.0, "uss": 0.0}]}
        cold_starts = {"steadfast": [], "hello": []}
        checks = run.target_checks([], memory, cold_starts, 16, "", OWASP_ARGON2)
        return next(check for check in checks if check.name.startswith("max worker RSS"))

    # 80,000,000 bytes are 78,125 KiB; one KiB more is over, though both print as 76.3 MiB.
    assert rss_check(78_125).met is True
    assert rss_check(78_126).met is False


def test_hash_bound_targets_say_whether_the_stack_had_a_core_beside_the_hashing():
    from benchmarks import run

    note = report.hashing_cores_note(workers=2, cpus=2)
    checks = run.target_checks([], {}, {"steadfast": [], "hello": []}, 16, "", OWASP_ARGON2, note)
    hash_bound = [check for check in checks if "hash time" in check.name or "verify" in check.name]
    assert [check.note for check in hash_bound] == [note, note]
    assert note == "2 workers on 2 CPUs: the rest of the stack shares the hashing cores"
    assert report.hashing_cores_note(workers=4, cpus=2).endswith("shares the hashing cores")
    assert report.hashing_cores_note(workers=1, cpus=2) == (
        "1 worker on 2 CPUs: 1 spare beside the hashing"
    )
    assert 1 <= run.usable_cpus() <= (os.cpu_count() or 1)


def test_make_bench_runs_in_a_virtualenv_of_the_runtime_requirements_only():
    """The image holds requirements.txt only; the dev virtualenv's extra packages change what
    the app imports (flask-smorest loads PyYAML when it is there), hence its memory."""
    makefile = (REPO_ROOT / "Makefile").read_text()
    bench_rule = re.search(r"^bench: (.+)$\n((?:\t.*\n)+)", makefile, re.M)
    assert bench_rule and bench_rule.group(1).strip() == "$(BENCH_VENV)/bin/.installed"
    assert "$(BENCH_VENV)/bin/python -m benchmarks.run" in bench_rule.group(2)
    venv_rule = re.search(
        r"^\$\(BENCH_VENV\)/bin/\.installed: (.+)$\n((?:\t.*\n)+)", makefile, re.M
    )
    assert venv_rule and venv_rule.group(1).strip() == "requirements.txt"
    assert "-r requirements.txt" in venv_rule.group(2)
    assert "requirements-dev" not in venv_rule.group(2)
    runtime = (REPO_ROOT / "requirements.txt").read_text().lower()
    for test_tool in ("pytest", "pyyaml", "ruff"):
        assert f"\n{test_tool}==" not in runtime, test_tool


def test_the_apps_argon2id_parameters_are_at_least_owasps_minimum():
    parameters = HASHER._parameters
    assert report.meets_owasp_argon2id(
        parameters.type.name, parameters.memory_cost, parameters.time_cost, parameters.parallelism
    )
    assert not report.meets_owasp_argon2id("ID", 19456, 1, 1)
    assert not report.meets_owasp_argon2id("I", 65536, 3, 1)
    assert report.meets_owasp_argon2id("ID", 12288, 3, 1)


def test_lua_string_literals_survive_quotes_backslashes_and_newlines():
    assert wrk.lua_string('a"b\\c\nd') == '"a\\"b\\\\c\\nd"'


def test_a_single_fixed_request_is_preformatted_by_wrk_without_lua_per_request():
    script = wrk.lua_script(
        [wrk.Request("POST", "/login", (("Content-Type", "application/json"),), '{"a": 1}')],
        "run1",
    )
    assert 'wrk.method = "POST"' in script
    assert 'wrk.headers["Content-Type"] = "application/json"' in script
    assert "function request()" not in script
    assert wrk.RESULT_MARKER in script


def test_the_wrk_summary_is_read_back_in_milliseconds_and_requests_per_second():
    stdout = (
        "Running 5s test\n"
        + wrk.RESULT_MARKER
        + json.dumps(
            {
                "requests": 5000,
                "duration_us": 5_000_000,
                "status_errors": 3,
                "socket_errors": 1,
                "p50_us": 1500,
                "p90_us": 2500,
                "p99_us": 9000,
                "max_us": 20000,
                "mean_us": 1600.5,
            }
        )
        + "\n"
    )
    result = wrk.parse_result(stdout)
    assert result.requests_per_s == 1000.0
    assert (result.p50_ms, result.p99_ms) == (1.5, 9.0)
    assert (result.status_errors, result.socket_errors) == (3, 1)


def test_hello_baseline_answers_json():
    from benchmarks.baselines.hello import app

    response = app.test_client().get("/")
    assert response.status_code == 200
    assert response.get_json() == {"message": "Hello, World!"}


def test_cold_starts_alternate_steadfast_and_bare_flask_in_fresh_interpreters(tmp_path: Path):
    from benchmarks.run import cold_starts

    # Development settings: SQLite in a file of its own, no Redis.
    environment = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("APP_", "DATABASE_"))},
        "APP_ENV": "development",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'cold.db'}",
    }
    results = cold_starts(environment, "/health/live", count=2)
    assert sorted(results) == ["hello", "steadfast"]
    for target, starts in results.items():
        assert len(starts) == 2, target
        for start in starts:
            assert start["status"] == 200, target
            parts = start["import_s"] + start["create_app_s"] + start["first_response_s"]
            assert start["total_s"] == pytest.approx(parts, abs=0.001)
            assert start["total_s"] > 0
    # The bare baseline builds its app as it is imported: nothing to time apart.
    assert {start["create_app_s"] for start in results["hello"]} == {0.0}
    assert all(start["create_app_s"] > 0 for start in results["steadfast"])


@pytest.fixture
def reference_app(monkeypatch: pytest.MonkeyPatch, postgresql_database_url: str) -> Iterator[Any]:
    monkeypatch.setenv("JWT_SECRET", DEV_JWT_SECRET)
    monkeypatch.setenv("DATABASE_URL", postgresql_database_url)
    module = importlib.reload(importlib.import_module("benchmarks.baselines.reference"))
    yield module.app
    module.engine.dispose()


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_reference_reads_the_same_user_as_users_me_for_the_same_token(
    client, registered_user, reference_app
):
    headers = bearer(registered_user["access_token"])
    steadfast = client.get("/api/v1/users/me", headers=headers).get_json()["data"]
    reference = reference_app.test_client().get("/users/me", headers=headers)
    assert reference.status_code == 200
    assert reference.get_json()["data"]["id"] == steadfast["id"]
    assert reference.get_json()["data"]["email"] == registered_user["email"]


def test_reference_refuses_a_forged_token(reference_app):
    response = reference_app.test_client().get("/users/me", headers=bearer("not.a.token"))
    assert response.status_code == 401


def test_baseline_servers_share_the_projects_server_settings_but_none_of_its_hooks():
    code = (
        "import json\n"
        "from benchmarks.gunicorn_settings import server_settings\n"
        "from benchmarks.servers import BASELINE_GUNICORN_CONFIG, PROJECT_GUNICORN_CONFIG\n"
        "import runpy\n"
        "project = server_settings(PROJECT_GUNICORN_CONFIG)\n"
        "baseline = runpy.run_path(str(BASELINE_GUNICORN_CONFIG))\n"
        "print(json.dumps({'project': project, 'baseline_keys': sorted(baseline),\n"
        "  'baseline': {k: baseline[k] for k in project}}, default=str))\n"
    )
    completed = subprocess.run(
        [sys.executable, "-c", code],
        cwd=REPO_ROOT,
        env={"APP_ENV": "test", "WEB_CONCURRENCY": "3", "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr
    settings = json.loads(completed.stdout.strip().splitlines()[-1])
    assert settings["project"]["workers"] == 3
    assert settings["baseline"] == settings["project"]
    assert "logger_class" not in settings["baseline_keys"]
    assert "post_fork" not in settings["baseline_keys"]


class _RecordingServer:
    """A loopback HTTP server that keeps every request body and Authorization it receives."""

    def __init__(self) -> None:
        self.bodies: list[bytes] = []
        self.authorizations: list[str | None] = []
        self._lock = threading.Lock()
        self._server = make_server("127.0.0.1", 0, self._app, threaded=True)
        self.url = f"http://127.0.0.1:{self._server.server_port}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def _app(self, environ: dict, start_response: Any) -> Any:
        request = WsgiRequest(environ)
        body = request.get_data()
        with self._lock:
            self.bodies.append(body)
            self.authorizations.append(request.headers.get("Authorization"))
        return WsgiResponse("{}", status=201, mimetype="application/json")(environ, start_response)

    def __enter__(self) -> _RecordingServer:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._server.shutdown()
        self._thread.join(timeout=10)


@pytest.mark.slow
def test_wrk_registration_load_sends_a_new_email_with_every_request(tmp_path: Path):
    if wrk.wrk_path() is None:
        pytest.skip("wrk is not installed (make bench installs it; apt-get install -y wrk)")
    register = wrk.Request(
        "POST",
        "/api/v1/users",
        (("Content-Type", "application/json"),),
        '{"email": "' + wrk.UNIQUE_EMAIL_PLACEHOLDER + '", "password": "x"}',
    )
    with _RecordingServer() as server:
        result = wrk.run_wrk(
            server.url,
            [register],
            script_dir=tmp_path,
            run_id="unique",
            duration_s=1,
            connections=4,
            threads=2,
        )
    emails = [json.loads(body)["email"] for body in server.bodies]
    assert result.requests > 10 and result.status_errors == 0
    assert len(emails) >= result.requests
    assert len(set(emails)) == len(emails)
    assert all(email.startswith("bench-unique-") for email in emails)


def test_hook_costs_time_every_hook_and_view_and_leave_the_rest_to_flask(tmp_path):
    from app import create_app
    from benchmarks import hook_costs

    app = create_app({"APP_ENV": "test", "DATABASE_URL": f"sqlite:///{tmp_path}/hooks.db"})
    hooks_before = sum(len(functions) for functions in app.after_request_funcs.values())
    spent_ns = hook_costs.instrument(app)

    costs = hook_costs.measure(
        app, spent_ns, "/health/ready", hook_costs.CLIENT_HEADERS, requests=50, warmup=5
    )

    assert costs.status == "200 OK" and costs.requests == 50
    names = [name for name, _ in costs.hooks]
    assert "view monitoring.ready" in names
    # The access line's hook, by the name it is registered under.
    assert "after _finish_request" in names
    assert sum(name.startswith("after ") for name in names) == hooks_before
    assert all(cost >= 0 for _, cost in costs.hooks)
    # Each hook runs inside the request, so the hooks never add up to more than the whole.
    assert 0 <= costs.rest_us < costs.total_us
    report_text = hook_costs.format_costs(costs)
    assert report_text.startswith("GET /health/ready -> 200 OK")
    assert "rest: Werkzeug" in report_text


def test_hook_costs_say_when_a_request_never_reached_flask(tmp_path):
    from app import create_app
    from benchmarks import hook_costs

    app = create_app({"APP_ENV": "test", "DATABASE_URL": f"sqlite:///{tmp_path}/hooks.db"})
    spent_ns = hook_costs.instrument(app)

    costs = hook_costs.measure(
        app, spent_ns, "/health/live", hook_costs.CLIENT_HEADERS, requests=20, warmup=2
    )

    assert costs.status == "200 OK" and costs.hooks == []
    assert "answered ahead of Flask" in hook_costs.format_costs(costs)


def test_cpu_split_divides_each_party_s_cpu_by_the_requests_served():
    from benchmarks.cpu_split import Snapshot, split

    ticks_per_s = os.sysconf("SC_CLK_TCK")
    before = Snapshot(
        machine=1000,
        workers={11: {"11": 5, "12": 50}},
        redis={7: 10},
        postgres={20: 3},
    )
    # 2 s of machine CPU over 100 requests; a postgres backend born during the load counts.
    after = Snapshot(
        machine=1000 + 2 * ticks_per_s,
        workers={11: {"11": 5 + ticks_per_s // 10, "12": 50 + ticks_per_s}},
        redis={7: 10 + ticks_per_s // 10},
        postgres={20: 3, 21: ticks_per_s // 10},
    )

    cpu = split(before, after, requests=100)

    assert cpu.total_ms == 20.0
    assert cpu.workers_ms == 11.0 and cpu.busiest_threads_ms == 10.0
    assert cpu.redis_ms == 1.0 and cpu.postgres_ms == 1.0
    assert cpu.rest_ms == pytest.approx(7.0)
    assert not cpu.workers_recycled
    recycled = Snapshot(after.machine, {13: {"13": 1}}, after.redis, after.postgres)
    assert split(before, recycled, requests=100).workers_recycled


def test_cpu_split_reads_the_cpu_of_each_thread_of_a_worker_from_proc():
    from benchmarks.cpu_split import machine_busy_ticks, snapshot

    spun = threading.Event()
    release = threading.Event()

    def spin_then_wait(seconds: float) -> None:
        started = time.thread_time()
        while time.thread_time() - started < seconds:
            pass
        spun.set()
        release.wait(10)

    before = snapshot([os.getpid()])
    spinner = threading.Thread(target=spin_then_wait, args=(0.3,))
    spinner.start()
    try:
        assert spun.wait(10)
        after = snapshot([os.getpid()])
    finally:
        release.set()
        spinner.join()

    threads_before, threads_after = before.workers[os.getpid()], after.workers[os.getpid()]
    grown = [ticks - threads_before.get(tid, 0) for tid, ticks in threads_after.items()]
    ticks_per_s = os.sysconf("SC_CLK_TCK")
    # The spinning thread is the busiest, with its 0.3 s (ticks are 1/100 s: some slack).
    assert max(grown) >= 0.25 * ticks_per_s
    assert after.machine - before.machine >= 0.25 * ticks_per_s
    assert machine_busy_ticks() >= after.machine


def _tokens_load(count: int) -> list[wrk.Request]:
    return [
        wrk.Request("GET", "/users/me", (("Authorization", f"Bearer token-{number}"),))
        for number in range(count)
    ]


@pytest.mark.slow
def test_wrk_rotates_through_thousands_of_tokens_with_one_draw_per_request(tmp_path: Path):
    if wrk.wrk_path() is None:
        pytest.skip("wrk is not installed (make bench installs it; apt-get install -y wrk)")
    load = _tokens_load(run.MANY_TOKENS)
    assert "local uniform = true" in wrk.lua_script(load, "many")
    with _RecordingServer() as server:
        result = wrk.run_wrk(
            server.url,
            load,
            script_dir=tmp_path,
            run_id="many",
            duration_s=1,
            connections=4,
            threads=2,
        )
    seen = server.authorizations
    assert result.requests > 100 and result.status_errors == 0
    # Drawn uniformly from 16,384: a token seen twice is rare, and tokens from both ends come.
    assert len(set(seen)) >= 0.8 * len(seen)
    numbers = [int(value.rpartition("-")[2]) for value in seen if value]
    assert min(numbers) < run.MANY_TOKENS // 4 and max(numbers) > 3 * run.MANY_TOKENS // 4


def test_a_weighted_load_keeps_the_weighted_draw():
    mixed = [
        wrk.Request("GET", "/a", weight=70),
        wrk.Request("GET", "/b", weight=30),
    ]
    assert "local uniform = false" in wrk.lua_script(mixed, "mixed")


def test_preflight_checks_a_sample_of_a_load_of_many_tokens_with_the_loads_status():
    scenario = run.Scenario(
        "me-many", "many tokens", {"recording": _tokens_load(500)}, {"recording": 201}
    )
    with _RecordingServer() as server:
        target = servers.Target("recording", "-", Path("-"), "/")
        recording = servers.Server(target, None, server.url, Path("-"), 0.0)  # type: ignore[arg-type]
        run.preflight(scenario, {"recording": recording})
        assert server.authorizations == [f"Bearer token-{n}" for n in range(run.PREFLIGHT_SAMPLE)]
        refused = run.Scenario("me-many", "", {"recording": _tokens_load(3)}, {"recording": 200})
        with pytest.raises(RuntimeError, match="answered 201"):
            run.preflight(refused, {"recording": recording})


def test_many_tokens_are_compared_with_the_reference_round_by_round_beside_one_token():
    runs = [
        _run(1, "steadfast", 800, p99_ms=30, scenario="me"),
        _run(1, "reference", 1000, p99_ms=20, scenario="me"),
        _run(1, "steadfast", 700, p99_ms=40, scenario="me-many"),
        _run(1, "reference", 1000, p99_ms=20, scenario="me-many"),
        _run(2, "steadfast", 1400, p99_ms=30, scenario="me-many"),
        _run(2, "reference", 2000, p99_ms=10, scenario="me-many"),
    ]
    compared = run.many_tokens_comparison(runs, 16384)
    assert compared == {
        "tokens": 16384,
        "requests_per_s_ratio": 0.7,
        "p50_ratio": 1.0,
        "p99_ratio": 2.5,
        "one_token_requests_per_s_ratio": 0.8,
    }
    assert run.many_tokens_comparison(runs[:2], 16384) is None


def test_the_many_tokens_scenario_is_on_by_default_and_its_size_is_checked():
    arguments = parse_bench_args([])
    assert "me-many" in run.wanted_scenarios(arguments)
    assert arguments.many_tokens == run.MANY_TOKENS
    with pytest.raises(SystemExit):
        parse_bench_args(["--many-tokens", "0"])


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_many_users_are_copies_of_a_user_each_with_its_own_valid_access_token(
    app, client, registered_user
):
    from benchmarks.many_users import create_users_and_tokens

    with app.app_context():
        access_tokens = create_users_and_tokens(registered_user["email"], 5)
    assert len(set(access_tokens)) == 5
    users = [client.get("/api/v1/users/me", headers=bearer(t)).get_json() for t in access_tokens]
    assert all(user["success"] for user in users)
    assert len({user["data"]["id"] for user in users}) == 5
    assert registered_user["id"] not in {user["data"]["id"] for user in users}
    assert all(user["data"]["name"] == "Test User" for user in users)
    assert all(user["data"]["email"].startswith("bench-many-") for user in users)
    # The copies keep the template's password: they can log in with it.
    login = client.post(
        "/api/v1/auth/login",
        json={"email": users[0]["data"]["email"], "password": registered_user["password"]},
    )
    assert login.status_code == 200


def test_the_busiest_workers_share_is_read_from_the_cpu_each_worker_spent():
    before = {11: 100, 12: 200, 13: 50}
    # 13 is gone (recycled): only workers present in both readings count.
    assert servers.busiest_worker_share(before, {11: 160, 12: 240, 14: 999}) == 0.6
    assert servers.busiest_worker_share(before, {11: 100, 12: 400}) == 1.0
    assert servers.busiest_worker_share({11: 1}, {11: 90}) is None  # one worker: no spread
    assert servers.busiest_worker_share(before, before) is None  # nothing spent


def test_a_server_reads_its_workers_cpu_from_proc():
    worker = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        server = servers.Server(
            servers.Target("busy", "-", Path("-"), "/"),
            None,
            "-",
            Path("-"),
            0.0,  # type: ignore[arg-type]
        )
        server.worker_pids = lambda: [worker.pid]  # type: ignore[method-assign]
        first = server.worker_cpu_ticks()[worker.pid]
        time.sleep(0.3)
        assert server.worker_cpu_ticks()[worker.pid] > first
    finally:
        worker.kill()
        worker.wait()


def test_a_round_with_one_worker_holding_every_connection_is_left_out_like_a_recycle():
    pair = ("steadfast", "reference")
    runs = [
        _run(1, "steadfast", 800, busiest_worker_share=0.52),
        _run(1, "reference", 1000, busiest_worker_share=0.51),
        # The reference's workers: one of them did all the work, at half the rate.
        _run(2, "steadfast", 800, busiest_worker_share=0.55),
        _run(2, "reference", 500, busiest_worker_share=1.0),
        _run(3, "steadfast", 800, busiest_worker_share=0.5),
        _run(3, "reference", 1000, busiest_worker_share=0.6),
    ]
    assert report.is_pinned(runs[3]) and not report.is_pinned(runs[5])
    assert report.clean_rounds(runs, "me", pair) == 2
    assert report.paired_ratio(runs, "me", *pair, "requests_per_s") == pytest.approx(0.8)
    assert report.wants_another_round(runs, "me", pair, rounds=3, extra_rounds=3)
    # With every round pinned, the ratio still comes from what was measured.
    pinned = [_run(1, target, 100, busiest_worker_share=1.0) for target in pair]
    assert report.paired_ratio(pinned, "me", *pair, "requests_per_s") == 1.0


def test_a_pinned_login_round_is_left_out_of_the_ratio_to_the_hash_alone():
    runs = [
        _run(1, "steadfast", 80, scenario="login", busiest_worker_share=0.5),
        _run(1, "hash-only", 100, scenario="login"),
        _run(2, "steadfast", 40, scenario="login", busiest_worker_share=0.97),
        _run(2, "hash-only", 100, scenario="login"),
    ]
    compared = ("steadfast", "hash-only")
    assert report.paired_ratio(runs, "login", *compared, "requests_per_s") == 0.8
    assert report.wants_another_round(runs, "login", compared, rounds=2, extra_rounds=1)


def test_a_round_line_says_why_a_round_is_left_out_of_the_ratios():
    pinned = _run(2, "reference", 805, busiest_worker_share=1.0, recycles=1)
    line = run.round_line(pinned)
    assert "busiest worker 100%" in line
    assert "1 worker(s) recycled, one worker held every connection: round left out" in line
    spread = run.round_line(_run(1, "steadfast", 1400, busiest_worker_share=0.52))
    assert "busiest worker 52%" in spread and "left out" not in spread
