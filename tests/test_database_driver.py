"""psycopg runs its C implementation, linked to the system's libpq (requirements.txt).

The wheel build (psycopg-binary) bundles its own libpq and OpenSSL: a worker then maps two
OpenSSL copies, ~1 MiB more RSS, and misses the OS's security updates of both
(docs/performance.md, finding 28).
"""

from __future__ import annotations

import subprocess
from importlib import metadata
from pathlib import Path

import psycopg


def test_psycopg_uses_its_c_implementation_on_the_system_libpq() -> None:
    assert psycopg.pq.__impl__ == "c"
    # Built and run against the same libpq major version: the system's, not a bundled one.
    assert psycopg.pq.version() // 10_000 == psycopg.pq.__build_version__ // 10_000
    pg_config_libdir = subprocess.run(
        ["pg_config", "--libdir"], capture_output=True, text=True, check=True
    ).stdout.strip()
    mapped = Path("/proc/self/maps").read_text()
    libpq_paths = {line.split()[-1] for line in mapped.splitlines() if "/libpq" in line}
    assert libpq_paths, "libpq is not mapped"
    assert all(path.startswith(pg_config_libdir) for path in libpq_paths), libpq_paths
    assert not any("psycopg_binary" in line for line in mapped.splitlines())


def test_the_binary_build_is_not_installed() -> None:
    # psycopg would prefer "c", but a stray psycopg-binary is a second libpq on disk that a
    # PSYCOPG_IMPL=binary could select.
    installed = {dist.metadata["Name"].lower() for dist in metadata.distributions()}
    assert "psycopg-c" in installed
    assert "psycopg-binary" not in installed
