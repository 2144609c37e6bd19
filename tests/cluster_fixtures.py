"""A running cluster for tests: nginx, two instances, PostgreSQL and a private Redis, each
dependency behind a fault proxy; helpers to wait for recovery and to read /health."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import requests

from deploy.cluster import LocalCluster
from tests.faults import RedisServer, TcpProxy, private_redis, proxied
from tests.services import temporary_postgres_database
from tests.traffic import bearer, register_and_login

RECOVERY_DEADLINE_S = 60.0


@dataclass
class Stack:
    cluster: LocalCluster
    database_url: str
    redis: RedisServer
    database_proxy: TcpProxy
    redis_proxy: TcpProxy

    @property
    def url(self) -> str:
        return self.cluster.url

    def worker_pids(self) -> dict[str, list[int]]:
        return {member.name: member.worker_pids() for member in self.cluster.members}

    def heal(self) -> None:
        """Undo every fault a test may have left: proxies pass, Redis runs."""
        self.database_proxy.heal()
        self.redis_proxy.heal()
        if not self.redis.running:
            self.redis.start()

    def serves_authenticated_requests(self) -> bool:
        """A fresh user can register, log in and read /users/me on every instance."""
        try:
            user = register_and_login(self.url)
        except AssertionError:
            return False
        for member in self.cluster.members:
            try:
                response = requests.get(
                    f"{member.url}/api/v1/users/me",
                    headers=bearer(user["access_token"]),
                    timeout=15,
                )
            except requests.RequestException:
                return False
            if response.status_code != 200:
                return False
        return True


@contextmanager
def running_stack(workdir: Path, environment: Mapping[str, str] | None = None) -> Iterator[Stack]:
    with (
        temporary_postgres_database("steadfast_cluster") as database_url,
        private_redis(workdir / "redis") as redis_server,
        proxied(database_url) as database_proxy,
        proxied(redis_server.url) as redis_proxy,
    ):
        cluster = LocalCluster(
            database_url=database_proxy.url_for(database_url),
            redis_url=redis_proxy.url_for(redis_server.url),
            workdir=workdir / "cluster",
            environment=dict(environment or {}),
        )
        with cluster:
            yield Stack(cluster, database_url, redis_server, database_proxy, redis_proxy)


def wait_until(predicate: Callable[[], bool], deadline_s: float = RECOVERY_DEADLINE_S) -> float:
    """Seconds until `predicate()` held, polling; TimeoutError past the deadline."""
    started = time.monotonic()
    while not predicate():
        if time.monotonic() - started > deadline_s:
            raise TimeoutError(f"not recovered within {deadline_s} s")
        time.sleep(0.2)
    return time.monotonic() - started


def health(base_url: str, path: str = "/health") -> requests.Response:
    return requests.get(base_url + path, timeout=10)


def has_health_endpoints(base_url: str) -> bool:
    return health(base_url, "/health/ready").status_code != 404
