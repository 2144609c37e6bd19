"""Where the machine's CPU goes per request under load: workers, their busiest thread, Redis,
PostgreSQL and the rest (wrk, the kernel's network work, everything else).

`make bench` compares throughputs. On this 2-core host every load saturates the CPU, so a
ratio of throughputs is the inverse ratio of the machine's CPU per request; this says whose
CPU that is (docs/performance.md, finding 26). Same servers, settings and loads as
`make bench`; each load runs once, and the CPU of every process is read from /proc before and
after it, and divided by the requests served.

    .venv-bench/bin/python -m benchmarks.cpu_split                           # me and login
    .venv-bench/bin/python -m benchmarks.cpu_split --scenarios me,live,register --duration 10

In a worker the busiest thread is, for login and registration, the one argon2id runs on.
"""

from __future__ import annotations

import os
import sys
import tempfile
from collections.abc import Iterable
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

from benchmarks import run, servers
from benchmarks.wrk import run_wrk, wrk_path

_TICKS_PER_S = os.sysconf("SC_CLK_TCK")
DEFAULT_SCENARIOS = "me,login"


def _uid_of(pid: str) -> int | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("Uid:"):
                return int(line.split()[1])
    except (FileNotFoundError, ProcessLookupError):
        pass
    return None


def _pids(command_prefix: str = "", uid: int | None = None) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            command = (entry / "comm").read_text().strip()
        except (FileNotFoundError, ProcessLookupError):
            continue
        if command.startswith(command_prefix) and (uid is None or _uid_of(entry.name) == uid):
            found.append(int(entry.name))
    return found


def _postgres_uid() -> int | None:
    postmasters = _pids("postgres")
    return _uid_of(str(postmasters[0])) if postmasters else None


def machine_busy_ticks() -> int:
    """CPU ticks the whole machine spent on anything but idling, since boot."""
    values = [int(value) for value in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = values[3] + values[4]  # idle, iowait
    return sum(values[:8]) - idle  # user .. steal; guest time is already inside user


@dataclass(frozen=True)
class Snapshot:
    machine: int
    workers: dict[int, dict[str, int]]  # worker pid -> thread id -> ticks
    redis: dict[int, int]
    postgres: dict[int, int]


def snapshot(worker_pids: Iterable[int]) -> Snapshot:
    workers = {}
    for pid in worker_pids:
        tasks = Path(f"/proc/{pid}/task")
        threads = tasks.iterdir() if tasks.exists() else []
        workers[pid] = {thread.name: servers.cpu_ticks(thread / "stat") for thread in threads}
    uid = _postgres_uid()
    return Snapshot(
        machine=machine_busy_ticks(),
        workers=workers,
        redis={pid: servers.cpu_ticks(Path(f"/proc/{pid}/stat")) for pid in _pids("redis-server")},
        postgres={
            pid: servers.cpu_ticks(Path(f"/proc/{pid}/stat"))
            for pid in (_pids(uid=uid) if uid is not None else [])
        },
    )


@dataclass(frozen=True)
class CpuSplit:
    """CPU milliseconds per request, by where they were spent."""

    requests: int
    # A worker recycled (max_requests) during the load took its CPU figures with it.
    workers_recycled: bool
    total_ms: float
    workers_ms: float
    busiest_threads_ms: float  # each worker's busiest thread (argon2id's, when hashing)
    redis_ms: float
    postgres_ms: float

    @property
    def rest_ms(self) -> float:
        return self.total_ms - self.workers_ms - self.redis_ms - self.postgres_ms


def _grown(before: dict, after: dict) -> list[int]:
    # A process or thread born during the load counts from zero; one gone by its end is lost.
    return [ticks - before.get(key, 0) for key, ticks in after.items()]


def split(before: Snapshot, after: Snapshot, requests: int) -> CpuSplit:
    def ms(ticks: float) -> float:
        return round(ticks * 1000 / _TICKS_PER_S / max(requests, 1), 3)

    per_worker = [_grown(before.workers.get(pid, {}), after.workers[pid]) for pid in after.workers]
    return CpuSplit(
        requests=requests,
        workers_recycled=set(before.workers) != set(after.workers),
        total_ms=ms(after.machine - before.machine),
        workers_ms=ms(sum(sum(threads) for threads in per_worker)),
        busiest_threads_ms=ms(sum(max(threads, default=0) for threads in per_worker)),
        redis_ms=ms(sum(_grown(before.redis, after.redis))),
        postgres_ms=ms(sum(_grown(before.postgres, after.postgres))),
    )


def format_split(scenario: str, target: str, rate: float, cpu: CpuSplit) -> str:
    return (
        f"{scenario:9} {target:10} {rate:8.1f} req/s  CPU ms per request: "
        f"total {cpu.total_ms:6.2f} = workers {cpu.workers_ms:6.2f} "
        f"(busiest threads {cpu.busiest_threads_ms:5.2f}) + redis {cpu.redis_ms:4.2f} "
        f"+ postgres {cpu.postgres_ms:4.2f} + rest {cpu.rest_ms:5.2f}"
        + ("  (a worker was recycled: its CPU is in rest)" if cpu.workers_recycled else "")
    )


def main(argv: list[str] | None = None) -> int:
    if wrk_path() is None:
        print("wrk is not installed: apt-get install -y wrk", file=sys.stderr)
        return 2
    argv = list(sys.argv[1:] if argv is None else argv)
    if not any(arg.startswith("--scenarios") for arg in argv):
        argv += ["--scenarios", DEFAULT_SCENARIOS]
    args = run.parse_args(argv)
    with ExitStack() as stack:
        workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="steadfast-cpu-")))
        database_url = stack.enter_context(servers.temporary_database(args.postgres_admin_url))
        environment = run.bench_environment(args, database_url, workdir)
        servers.compile_bytecode()
        servers.migrate(environment)
        servers_by_name = {
            target.name: stack.enter_context(
                servers.serving(target, environment, workdir / f"{target.name}.log")
            )
            for target in (servers.STEADFAST, servers.HELLO, servers.REFERENCE)
        }
        email, access_token = run.seed_user(servers_by_name["steadfast"].base_url)
        context = run.Context(args, workdir)
        for scenario in run.build_scenarios(
            context, servers_by_name["steadfast"].base_url, email, access_token
        ):
            if not set(scenario.loads) <= set(servers_by_name):
                print(f"{scenario.name}: not measured here (use benchmarks.run)", flush=True)
                continue
            run.preflight(scenario, servers_by_name)
            connections = args.hash_connections if scenario.hash_baseline else args.connections
            for target, loads in scenario.loads.items():
                server = servers_by_name[target]
                before = snapshot(server.worker_pids())
                result = run_wrk(
                    server.base_url,
                    loads,
                    script_dir=workdir,
                    run_id=f"cpu-{scenario.name}-{target}",
                    duration_s=args.duration,
                    connections=connections,
                    threads=min(2, connections),
                )
                after = snapshot(server.worker_pids())
                cpu = split(before, after, result.requests)
                print(format_split(scenario.name, target, result.requests_per_s, cpu), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
