"""Load generation with wrk: a Lua script per run, and its summary read back as JSON."""

from __future__ import annotations

import json
import shutil
import subprocess
from dataclasses import asdict, dataclass
from pathlib import Path

RESULT_MARKER = "BENCH_RESULT "
# `{email}` in a request body becomes an address no other request of any run has used.
UNIQUE_EMAIL_PLACEHOLDER = "{email}"


@dataclass(frozen=True)
class Request:
    """One kind of request a load sends; `weight` is its share in a mixed load."""

    method: str
    path: str
    headers: tuple[tuple[str, str], ...] = ()
    body: str | None = None
    weight: int = 1

    @property
    def is_unique_per_send(self) -> bool:
        return self.body is not None and UNIQUE_EMAIL_PLACEHOLDER in self.body


@dataclass(frozen=True)
class WrkResult:
    requests: int
    duration_s: float
    requests_per_s: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    mean_ms: float
    # HTTP statuses >= 400, and socket-level failures (connect, read, write, timeout).
    status_errors: int
    socket_errors: int

    def as_dict(self) -> dict[str, float | int]:
        return asdict(self)


def lua_string(value: str) -> str:
    """A Lua string literal holding exactly `value`."""
    escaped = (
        value.replace("\\", "\\\\")
        .replace('"', '\\"')
        .replace("\n", "\\n")
        .replace("\r", "\\r")
        .replace("\0", "\\0")
    )
    return f'"{escaped}"'


def _lua_request_table(request: Request) -> str:
    headers = ", ".join(f"[{lua_string(k)}] = {lua_string(v)}" for k, v in request.headers)
    body = "nil" if request.body is None else lua_string(request.body)
    return (
        f"{{weight = {request.weight}, method = {lua_string(request.method)}, "
        f"path = {lua_string(request.path)}, headers = {{{headers}}}, body = {body}, "
        f"unique = {'true' if request.is_unique_per_send else 'false'}}}"
    )


# The summary every run prints, read back by parse_result(); latencies are in microseconds.
_DONE_FUNCTION = f"""
function done(summary, latency, requests)
  local errors = summary.errors
  io.write(string.format(
    '{RESULT_MARKER}{{"requests": %d, "duration_us": %d, "status_errors": %d, ' ..
    '"socket_errors": %d, "p50_us": %d, "p90_us": %d, "p99_us": %d, "max_us": %d, ' ..
    '"mean_us": %.1f}}\\n',
    summary.requests, summary.duration, errors.status,
    errors.connect + errors.read + errors.write + errors.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99),
    latency.max, latency.mean))
end
"""

# A single fixed request is pre-formatted once by wrk itself (no Lua per request), so
# the load generator costs the same for Steadfast and for the baselines.
_STATIC_TEMPLATE = """
wrk.method = {method}
wrk.path = {path}
wrk.body = {body}
{headers}
"""

# Weighted choice among requests (uniform: one draw, however many requests; a load of many
# users' tokens has thousands); unique bodies get "<run>-<thread>-<counter>" addresses.
_DYNAMIC_TEMPLATE = """
local run_id = {run_id}
local uniform = {uniform}
local specs = {{
{specs}
}}
local prebuilt, cumulative, total_weight, counter = {{}}, {{}}, 0, 0
local next_thread_id = 1

function setup(thread)
  thread:set("thread_id", next_thread_id)
  next_thread_id = next_thread_id + 1
end

function init(args)
  math.randomseed(os.time() + (thread_id or 0) * 7919)
  for i, spec in ipairs(specs) do
    if not spec.unique then
      prebuilt[i] = wrk.format(spec.method, spec.path, spec.headers, spec.body)
    end
    total_weight = total_weight + spec.weight
    cumulative[i] = total_weight
  end
end

function request()
  local pick = 1
  if uniform then
    pick = math.random(#specs)
  elseif #specs > 1 then
    local roll = math.random() * total_weight
    while cumulative[pick] < roll do pick = pick + 1 end
  end
  local spec = specs[pick]
  if not spec.unique then return prebuilt[pick] end
  counter = counter + 1
  local email = string.format("bench-%s-%d-%d@example.com", run_id, thread_id or 0, counter)
  local body = string.gsub(spec.body, "{{email}}", email)
  return wrk.format(spec.method, spec.path, spec.headers, body)
end
"""


def lua_script(requests: list[Request], run_id: str) -> str:
    """The wrk script sending `requests` (weighted), ending with the JSON summary."""
    if not requests:
        raise ValueError("a load needs at least one request")
    if len(requests) == 1 and not requests[0].is_unique_per_send:
        only = requests[0]
        headers = "\n".join(
            f"wrk.headers[{lua_string(k)}] = {lua_string(v)}" for k, v in only.headers
        )
        body = "nil" if only.body is None else lua_string(only.body)
        script = _STATIC_TEMPLATE.format(
            method=lua_string(only.method), path=lua_string(only.path), body=body, headers=headers
        )
    else:
        specs = ",\n".join("  " + _lua_request_table(request) for request in requests)
        uniform = len({request.weight for request in requests}) == 1
        script = _DYNAMIC_TEMPLATE.format(
            run_id=lua_string(run_id), uniform="true" if uniform else "false", specs=specs
        )
    return "-- generated by benchmarks/wrk.py\n" + script + _DONE_FUNCTION


def parse_result(stdout: str) -> WrkResult:
    """The summary the script's done() printed."""
    for line in reversed(stdout.splitlines()):
        if line.startswith(RESULT_MARKER):
            raw = json.loads(line[len(RESULT_MARKER) :])
            break
    else:
        raise ValueError(f"wrk printed no {RESULT_MARKER.strip()} line:\n{stdout[-2000:]}")
    duration_s = raw["duration_us"] / 1e6
    return WrkResult(
        requests=raw["requests"],
        duration_s=round(duration_s, 3),
        requests_per_s=round(raw["requests"] / duration_s, 1) if duration_s else 0.0,
        p50_ms=raw["p50_us"] / 1000,
        p90_ms=raw["p90_us"] / 1000,
        p99_ms=raw["p99_us"] / 1000,
        max_ms=raw["max_us"] / 1000,
        mean_ms=round(raw["mean_us"] / 1000, 3),
        status_errors=raw["status_errors"],
        socket_errors=raw["socket_errors"],
    )


def wrk_path() -> str | None:
    return shutil.which("wrk")


def run_wrk(
    base_url: str,
    requests: list[Request],
    *,
    script_dir: Path,
    run_id: str,
    duration_s: float,
    connections: int,
    threads: int,
    timeout_s: float = 10.0,
) -> WrkResult:
    """One bounded wrk run against `base_url` (loopback)."""
    executable = wrk_path()
    if executable is None:
        raise RuntimeError("wrk is not installed (apt-get install -y wrk)")
    script = script_dir / f"load-{run_id}.lua"
    script.write_text(lua_script(requests, run_id))
    completed = subprocess.run(
        [
            executable,
            f"--threads={min(threads, connections)}",
            f"--connections={connections}",
            f"--duration={max(1, round(duration_s))}s",
            f"--timeout={max(1, round(timeout_s))}s",
            f"--script={script}",
            base_url + requests[0].path,
        ],
        capture_output=True,
        text=True,
        timeout=duration_s + timeout_s + 30,
        check=False,
    )
    if completed.returncode != 0:
        raise RuntimeError(f"wrk failed ({completed.returncode}): {completed.stderr.strip()}")
    return parse_result(completed.stdout)
