"""The README's curl session works as written, against a real gunicorn."""

from __future__ import annotations

import json
import re
import shutil
import subprocess

import pytest

from tests.processes import REPO_ROOT, gunicorn_server, migrated_sqlite_environment

pytestmark = pytest.mark.slow

README_ADDRESS = "localhost:8000"


def readme_try_it_commands() -> str:
    readme = (REPO_ROOT / "README.md").read_text()
    section = readme.split("## Try it", 1)[1]
    return re.search(r"```sh\n(.*?)```", section, re.DOTALL).group(1)


def test_the_readme_curl_session_registers_logs_in_and_reads_the_account(tmp_path):
    assert shutil.which("curl"), "curl is needed to run the README as a reader would"
    commands = readme_try_it_commands()
    assert commands.count("curl ") == 3 and README_ADDRESS in commands
    environment = migrated_sqlite_environment(tmp_path)
    with gunicorn_server(environment, tmp_path / "gunicorn.log", ready_path="/api/docs") as server:
        address = server.base_url.removeprefix("http://")
        session = subprocess.run(
            ["bash", "-euo", "pipefail", "-c", commands.replace(README_ADDRESS, address)],
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert session.returncode == 0, session.stderr
    created, me = (json.loads(line) for line in session.stdout.replace("}{", "}\n{").splitlines())
    assert created["success"] is True and created["data"]["email"] == "ann@example.com"
    assert me["data"] == created["data"]
