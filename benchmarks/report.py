"""Medians, in-run ratios and the issue's targets, as a printed table and a JSON document."""

from __future__ import annotations

import statistics
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

# OWASP Password Storage Cheat Sheet: argon2id configurations of equal strength
# (memory in KiB, iterations), parallelism 1. A configuration is at or above the minimum when
# it uses at least the memory and iterations of one of them.
OWASP_ARGON2ID_MINIMUMS = ((47104, 1), (19456, 2), (12288, 3), (9216, 4), (7168, 5))
# A run in which one worker spent at least this share of the workers' CPU had every connection
# on that worker: wrk opens them all at once and one gthread worker can accept them all
# (docs/performance.md, finding 52). Runs spread over 2 workers read 50-60 %, pinned ones 100 %.
PINNED_WORKER_SHARE = 0.9


@dataclass(frozen=True)
class Run:
    """One recorded wrk run of a scenario against a target."""

    scenario: str
    target: str
    round: int
    requests_per_s: float
    p50_ms: float | None
    p99_ms: float | None
    requests: int
    status_errors: int
    socket_errors: int
    unexpected_errors: int
    # Workers gunicorn replaced (max_requests) during this run: each is a cold start inside it.
    recycles: int = 0
    # The busiest worker's share of the workers' CPU in this run (0.5 is even with 2 workers).
    busiest_worker_share: float | None = None


@dataclass(frozen=True)
class TargetCheck:
    name: str
    measured: float | None
    comparison: str  # ">=" or "<="
    threshold: float
    unit: str = "x"
    note: str = ""

    @property
    def met(self) -> bool | None:
        if self.measured is None:
            return None
        if self.comparison == ">=":
            return self.measured >= self.threshold
        return self.measured <= self.threshold

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "met": self.met}


def is_pinned(run: Run) -> bool:
    """Whether one worker did (nearly) all of the run's work while the others idled."""
    return run.busiest_worker_share is not None and run.busiest_worker_share >= PINNED_WORKER_SHARE


def is_clean(run: Run) -> bool:
    """Whether a run measured the request path: no worker recycled in it (a cold start inside
    it) and its load spread over the workers (not one worker's capacity)."""
    return not run.recycles and not is_pinned(run)


def median(values: Iterable[float | None]) -> float | None:
    values = [value for value in values if value is not None]
    return statistics.median(values) if values else None


def runs_of(runs: Sequence[Run], scenario: str, target: str) -> list[Run]:
    return [run for run in runs if run.scenario == scenario and run.target == target]


def summary(runs: Sequence[Run]) -> dict[str, Any]:
    """Medians over the runs of one scenario and target."""
    return {
        "runs": len(runs),
        "requests_per_s": median(run.requests_per_s for run in runs),
        "p50_ms": median(run.p50_ms for run in runs),
        "p99_ms": median(run.p99_ms for run in runs),
        "requests": sum(run.requests for run in runs),
        "unexpected_errors": sum(run.unexpected_errors for run in runs),
    }


def clean_rounds(runs: Sequence[Run], scenario: str, targets: Sequence[str]) -> int:
    """Rounds of `scenario` that every one of `targets` ran clean (`is_clean`)."""
    rounds_by_target = [
        {run.round for run in runs_of(runs, scenario, target) if is_clean(run)}
        for target in targets
    ]
    return len(set.intersection(*rounds_by_target)) if rounds_by_target else 0


def wants_another_round(
    runs: Sequence[Run], scenario: str, targets: Sequence[str], rounds: int, extra_rounds: int
) -> bool:
    """After the planned rounds: run one more while the ratio would rest on fewer than
    `rounds` clean pairs, at most `extra_rounds` times.

    Only a comparison needs it: two servers, or a server and its hash-only baseline (always
    clean: it is not a server); a single target has no ratio.
    """
    if len(targets) < 2:
        return False
    done = max((run.round for run in runs if run.scenario == scenario), default=0)
    if done < rounds:
        return True
    return done < rounds + extra_rounds and clean_rounds(runs, scenario, targets) < rounds


def paired_ratio(
    runs: Sequence[Run], scenario: str, numerator: str, denominator: str, field: str
) -> float | None:
    """Median over rounds of numerator/denominator, each pair measured back to back.

    Pairing by round cancels most of the drift of a shared, noisy machine: both sides of a
    ratio saw the same neighbours. Rounds that were not clean are skipped (see below).
    """
    top = {run.round: run for run in runs_of(runs, scenario, numerator)}
    bottom = {run.round: run for run in runs_of(runs, scenario, denominator)}
    pairs = [(top[r], bottom[r]) for r in sorted(top.keys() & bottom.keys())]
    # A round in which either side recycled a worker measured a cold start as much as the
    # request path (the faster target recycles more often), and one in which a single worker
    # held every connection measured one worker's capacity: left out while clean rounds remain.
    clean = [(a, b) for a, b in pairs if is_clean(a) and is_clean(b)]
    ratios = [
        getattr(a, field) / getattr(b, field)
        for a, b in (clean or pairs)
        if getattr(a, field) is not None and getattr(b, field)
    ]
    return median(ratios)


def meets_owasp_argon2id(type_name: str, memory_kib: int, time_cost: int, parallelism: int) -> bool:
    if type_name.upper() != "ID" or parallelism < 1:
        return False
    return any(
        memory_kib >= minimum_memory and time_cost >= minimum_time
        for minimum_memory, minimum_time in OWASP_ARGON2ID_MINIMUMS
    )


def hashing_cores_note(workers: int, cpus: int) -> str:
    """What the hash-bound ratios were judged beside: cores to spare, or none.

    The hash-only baseline has the cores to itself; Steadfast's requests also spend CPU outside
    the hash (their Python, PostgreSQL, Redis, the load generator). With no core beyond one per
    worker, that CPU comes out of the hashing cores, which bounds the ratio (finding 50).
    """
    setting = f"{workers} worker{'s' * (workers != 1)} on {cpus} CPU{'s' * (cpus != 1)}"
    spare = cpus - workers
    if spare <= 0:
        return f"{setting}: the rest of the stack shares the hashing cores"
    return f"{setting}: {spare} spare beside the hashing"


def _number(value: float | None, digits: int = 1) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def format_runs_table(rows: list[tuple[str, str, dict[str, Any]]]) -> str:
    """`rows` are (scenario, target, summary()) in display order."""
    header = (
        f"{'scenario':<10} {'target':<10} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} "
        f"{'runs':>4} {'requests':>9} {'bad':>5}"
    )
    lines = [header, "-" * len(header)]
    for scenario, target, medians in rows:
        lines.append(
            f"{scenario:<10} {target:<10} {_number(medians['requests_per_s']):>9} "
            f"{_number(medians['p50_ms'], 2):>8} {_number(medians['p99_ms'], 2):>8} "
            f"{medians['runs']:>4} {medians['requests']:>9} {medians['unexpected_errors']:>5}"
        )
    return "\n".join(lines)


def format_targets_table(checks: list[TargetCheck]) -> str:
    width = max(len(check.name) for check in checks)
    lines = []
    for check in checks:
        verdict = {True: "met", False: "MISSED", None: "n/a"}[check.met]
        measured = _number(check.measured, 2)
        line = (
            f"{check.name:<{width}}  {measured:>8} {check.unit:<3} "
            f"{check.comparison} {check.threshold:<6g} {verdict}"
        )
        lines.append(line + (f"  ({check.note})" if check.note else ""))
    return "\n".join(lines)
