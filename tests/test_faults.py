"""Dependency outages under load: PostgreSQL or Redis cut, black-holed, stopped or slow.

The cluster (nginx, two instances) reaches PostgreSQL and a private Redis through loopback fault
proxies; each test breaks one of them while traffic runs, checks what clients saw, heals it in a
`finally` and measures the time until every instance serves again without a restart. The
figures (status counts per phase, recovery time) are printed for the closing note (`-s`).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator

import psycopg
import pytest
import requests

from tests.cluster_fixtures import (
    Stack,
    has_health_endpoints,
    health,
    running_stack,
    wait_until,
)
from tests.traffic import (
    STRONG_PASSWORD,
    BackgroundLoad,
    Outcome,
    bearer,
    call,
    register_and_login,
    started_within,
    tally,
    unique_email,
)

pytestmark = pytest.mark.slow

# Worst case for a request while PostgreSQL is black-holed: a pre-ping that gets no answer
# (DATABASE_WAIT_TIMEOUT_S = 7 s) plus a reconnect that gets none (connect timeout 3 s).
DATABASE_OUTAGE_BOUND_S = 15.0
REDIS_OUTAGE_BOUND_S = 10.0
GENEROUS_LIMITS = {
    # Load tests here must not be throttled; rate limits get their own test in test_cluster.
    "RATE_LIMIT_AUTH": "100000 per minute",
    "RATE_LIMIT_DEFAULT": "100000 per minute",
}


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    with running_stack(tmp_path_factory.mktemp("faults"), GENEROUS_LIMITS) as running:
        yield running


@pytest.fixture
def healthy_stack(stack: Stack) -> Iterator[Stack]:
    """The stack, proven healthy before the test and healed (bounded) after it, pass or fail."""
    wait_until(stack.serves_authenticated_requests)
    try:
        yield stack
    finally:
        stack.heal()
        wait_until(stack.serves_authenticated_requests)


def user_journey(base_url: str) -> Callable[[requests.Session], list[Outcome]]:
    """One load step: register, log in, read /users/me: each outcome timed.

    When the login fails (the outage), /users/me is read with the last token that worked, so
    it measures what an already signed-in client sees, not a request without credentials.
    """
    last_good_token: list[str] = []

    def step(client: requests.Session) -> list[Outcome]:
        email = unique_email()
        credentials = {"email": email, "password": STRONG_PASSWORD}
        outcomes = [call(client, "register", "POST", f"{base_url}/api/v1/users", json=credentials)]
        login = call(client, "login", "POST", f"{base_url}/api/v1/auth/login", json=credentials)
        outcomes.append(login)
        if login.status == 200:
            last_good_token[:] = [login.body["data"]["access_token"]]
        token = last_good_token[0] if last_good_token else "missing"
        outcomes.append(
            call(client, "me", "GET", f"{base_url}/api/v1/users/me", headers=bearer(token))
        )
        return outcomes

    return step


def report(title: str, **figures: object) -> None:
    print(f"\n[fault report] {title}: " + json.dumps(figures, default=str, sort_keys=True))


def assert_no_500_and_no_connection_error(outcomes: list[Outcome]) -> None:
    for outcome in outcomes:
        assert outcome.status is not None, f"no HTTP answer: {outcome}"
        assert outcome.status < 500 or outcome.status == 503, outcome
        if outcome.status == 503:
            assert outcome.code == "service_unavailable", outcome


def run_outage(
    stack: Stack, break_it: Callable[[], None], restore: Callable[[], None], outage_s: float
) -> tuple[list[Outcome], list[Outcome], float]:
    """Load before, during and after a fault: (outcomes during, all outcomes, recovery s)."""
    load = BackgroundLoad(user_journey(stack.url), threads=3).start()
    try:
        time.sleep(1.0)  # let healthy traffic flow first: the load, not a server, is awaited
        break_it()
        broken_at = time.monotonic()  # after: stopping a server takes a moment
        try:
            time.sleep(outage_s)
        finally:
            restored_at = time.monotonic()
            restore()
        recovery_s = wait_until(stack.serves_authenticated_requests)
        time.sleep(1.0)
    finally:
        everything = load.stop()
    return started_within(everything, broken_at, restored_at), everything, recovery_s


@pytest.mark.parametrize("fault", ["cut", "black-holed"])
def test_database_outage_answers_503_within_a_bounded_time_then_the_same_workers_recover(
    healthy_stack: Stack, fault: str
) -> None:
    proxy = healthy_stack.database_proxy
    workers_before = healthy_stack.worker_pids()
    during, everything, recovery_s = run_outage(
        healthy_stack,
        proxy.cut if fault == "cut" else proxy.pause,
        proxy.heal,
        outage_s=DATABASE_OUTAGE_BOUND_S + 2,
    )
    report(
        f"PostgreSQL {fault}",
        during_outage=tally(during),
        all=tally(everything),
        slowest_answer_s=round(max(o.elapsed_s for o in everything), 2),
        recovery_s=round(recovery_s, 2),
    )
    assert_no_500_and_no_connection_error(everything)
    # Everything of the journey needs the database: while it is away, only 503s come back.
    settled = [o for o in during if o.name in ("register", "login")]
    assert settled and {o.status for o in settled} == {503}
    assert max(o.elapsed_s for o in everything) < DATABASE_OUTAGE_BOUND_S
    assert healthy_stack.worker_pids() == workers_before, "workers were replaced, not recovered"


def test_health_ready_is_503_and_health_reports_the_database_down_during_an_outage(
    healthy_stack: Stack,
) -> None:
    if not has_health_endpoints(healthy_stack.url):
        pytest.skip("needs /health and /health/ready (operations issue), not in this build")
    assert health(healthy_stack.url, "/health/ready").status_code == 200
    healthy_stack.database_proxy.cut()
    try:
        ready = health(healthy_stack.url, "/health/ready")
        overall = health(healthy_stack.url)
        live = health(healthy_stack.url, "/health/live")
    finally:
        healthy_stack.database_proxy.heal()
    recovery_s = wait_until(lambda: health(healthy_stack.url, "/health/ready").status_code == 200)
    report(
        "PostgreSQL cut: /health",
        ready=ready.status_code,
        health=overall.status_code,
        body=overall.json(),
        recovery_s=round(recovery_s, 2),
    )
    assert ready.status_code == 503
    assert live.status_code == 200
    body = overall.json()
    assert body["checks"]["database"]["status"] != "ok"
    assert body["status"] in ("degraded", "down")
    assert overall.status_code == (503 if body["status"] == "down" else 200)


@pytest.mark.parametrize("fault", ["stopped", "closes connections", "black-holed"])
def test_redis_outage_fails_only_token_checks_closed_and_recovers_without_restart(
    healthy_stack: Stack, fault: str
) -> None:
    redis_server, proxy = healthy_stack.redis, healthy_stack.redis_proxy
    breakers = {
        "stopped": (redis_server.stop, redis_server.start),
        "closes connections": (proxy.cut, proxy.heal),
        "black-holed": (proxy.pause, proxy.heal),
    }
    workers_before = healthy_stack.worker_pids()
    break_it, restore = breakers[fault]
    during, everything, recovery_s = run_outage(healthy_stack, break_it, restore, outage_s=6)
    report(
        f"Redis {fault}",
        during_outage=tally(during),
        all=tally(everything),
        slowest_answer_s=round(max(o.elapsed_s for o in everything), 2),
        recovery_s=round(recovery_s, 2),
    )
    assert_no_500_and_no_connection_error(everything)
    # Registration and login do not need Redis: they keep working (limits fall back to memory).
    assert {o.status for o in during if o.name == "register"} == {201}
    assert {o.status for o in during if o.name == "login"} == {200}
    # Revocation cannot be checked: authenticated requests fail closed, with a 503.
    assert {o.status for o in during if o.name == "me"} == {503}
    assert max(o.elapsed_s for o in everything) < REDIS_OUTAGE_BOUND_S
    assert healthy_stack.worker_pids() == workers_before


def test_emails_of_registrations_during_a_redis_outage_are_not_lost(healthy_stack: Stack) -> None:
    healthy_stack.redis.stop()
    try:
        email = unique_email("mail")
        created = requests.post(
            f"{healthy_stack.url}/api/v1/users",
            json={"email": email, "password": STRONG_PASSWORD},
            timeout=30,
        )
    finally:
        healthy_stack.redis.start()
    assert created.status_code == 201, created.text
    # Sent inline during the outage or queued and sent by the worker afterwards: either way
    # the console backend logs the welcome email to this address.
    delivered_s = wait_until(lambda: _welcome_email_logged(healthy_stack, email), 60)
    report("Redis stopped: welcome email", delivered_after_s=round(delivered_s, 2))


def _welcome_email_logged(stack: Stack, email: str) -> bool:
    for line in stack.cluster.logs().splitlines():
        # The console backend's line: the message was handed to the backend, not just queued.
        if email in line and "console backend" in line:
            return True
    return False


def test_health_reports_redis_down_and_the_service_degraded(healthy_stack: Stack) -> None:
    if not has_health_endpoints(healthy_stack.url):
        pytest.skip("needs /health and /health/ready (operations issue), not in this build")
    healthy_stack.redis.stop()
    try:
        overall = health(healthy_stack.url)
    finally:
        healthy_stack.redis.start()
    recovery_s = wait_until(lambda: health(healthy_stack.url).json()["status"] == "ok")
    report(
        "Redis stopped: /health",
        health=overall.status_code,
        body=overall.json(),
        recovery_s=round(recovery_s, 2),
    )
    body = overall.json()
    assert overall.status_code == 200
    assert body["status"] == "degraded"
    assert body["checks"]["redis"]["status"] != "ok"
    assert body["checks"]["database"]["status"] == "ok"


def _rate_limited_build(stack: Stack) -> bool:
    """Whether this build has rate limits: their responses carry RateLimit headers."""
    response = requests.post(
        f"{stack.url}/api/v1/auth/login",
        json={"email": unique_email(), "password": STRONG_PASSWORD},
        timeout=15,
    )
    return any("ratelimit" in name.lower() for name in response.headers)


def _limits_counted_in_redis(stack: Stack, member_url: str) -> bool:
    """After a flush, does a login attempt on this instance leave its counter in Redis?"""
    client = stack.redis.client()
    try:
        client.flushdb()
        requests.post(
            f"{member_url}/api/v1/auth/login",
            json={"email": unique_email(), "password": STRONG_PASSWORD},
            timeout=15,
        )
        return client.dbsize() > 0
    finally:
        client.close()


def test_rate_limits_fall_back_to_memory_with_a_warning_and_return_to_redis(
    healthy_stack: Stack,
) -> None:
    if not _rate_limited_build(healthy_stack):
        pytest.skip("needs flask-limiter rate limits (security issue), not in this build")
    members = healthy_stack.cluster.members
    for member in members:
        wait_until(lambda url=member.url: _limits_counted_in_redis(healthy_stack, url), 90)
    log_offsets = {member.name: member.log_path.stat().st_size for member in members}
    healthy_stack.redis.stop()
    try:
        outcomes = [
            call(
                requests,
                "login",
                "POST",
                f"{member.url}/api/v1/auth/login",
                json={"email": unique_email(), "password": STRONG_PASSWORD},
            )
            for member in members
            for _ in range(3)
        ]
    finally:
        healthy_stack.redis.start()
    # Not refused: each instance counted in its own memory meanwhile, and said so.
    assert {o.status for o in outcomes} == {401}, tally(outcomes)
    for member in members:
        with open(member.log_path, "rb") as log:
            log.seek(log_offsets[member.name])
            new_lines = log.read().decode(errors="replace").splitlines()
        warnings = [
            json.loads(line)["message"]
            for line in new_lines
            if line.startswith("{") and '"level": "WARNING"' in line
        ]
        assert any("limit" in message.lower() for message in warnings), (member.name, warnings)

    # Back on Redis without a restart: each instance's counters land there again.
    back_s = max(
        wait_until(lambda url=member.url: _limits_counted_in_redis(healthy_stack, url), 90)
        for member in members
    )
    report("Redis stopped: rate limits", back_on_redis_after_s=round(back_s, 2))


def test_a_query_stuck_behind_a_lock_is_cancelled_by_the_statement_timeout(
    healthy_stack: Stack,
) -> None:
    user = register_and_login(healthy_stack.url)
    # A migration or a long transaction holding the users table: the server, not the network,
    # is slow. The statement timeout cancels the query; the client gets a 503, not a hang.
    with psycopg.connect(healthy_stack.database_url, connect_timeout=5) as blocker:
        blocker.execute("SET lock_timeout = '10s'")  # a leaked transaction fails the test
        blocker.execute("LOCK TABLE users IN ACCESS EXCLUSIVE MODE")
        started = time.monotonic()
        stuck = call(
            requests,
            "me",
            "GET",
            f"{healthy_stack.url}/api/v1/users/me",
            headers=bearer(user["access_token"]),
        )
        blocker.rollback()
    me = call(
        requests,
        "me",
        "GET",
        f"{healthy_stack.url}/api/v1/users/me",
        headers=bearer(user["access_token"]),
    )
    report(
        "PostgreSQL table locked",
        stuck_status=stuck.status,
        stuck_elapsed_s=round(stuck.elapsed_s, 2),
        after_release_status=me.status,
    )
    assert stuck.status == 503 and stuck.code == "service_unavailable"
    assert 4.0 < time.monotonic() - started < DATABASE_OUTAGE_BOUND_S
    assert me.status == 200
    # The operator sees where the time went: the cancelled statement is in the error log.
    assert "statement timeout" in healthy_stack.cluster.logs()


def test_a_slow_database_link_slows_requests_but_fails_none(healthy_stack: Stack) -> None:
    healthy_stack.database_proxy.slow(0.3)
    try:
        slow = [user_journey(healthy_stack.url)(requests.Session()) for _ in range(2)]
    finally:
        healthy_stack.database_proxy.heal()
    outcomes = [outcome for journey in slow for outcome in journey]
    report(
        "PostgreSQL link +0.3 s per chunk",
        outcomes=tally(outcomes),
        slowest_s=round(max(o.elapsed_s for o in outcomes), 2),
    )
    assert [o.status for o in outcomes] == [201, 200, 200] * 2
    assert max(o.elapsed_s for o in outcomes) < DATABASE_OUTAGE_BOUND_S
