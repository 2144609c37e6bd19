"""The image runs Python with -OO (PYTHONOPTIMIZE=2, Dockerfile): no docstrings, no asserts.

A fresh `python -OO` process migrates a database with `flask db upgrade` and serves the main
paths through the whole stack; the OpenAPI document it serves is the one a normal process
serves, summaries included.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from flask import Flask

REPO_ROOT = Path(__file__).resolve().parent.parent
FLASK_CLI = Path(sys.executable).with_name("flask")

_FAILS_IF_ASSERTS_RUN = 'assert False, "asserts are kept"'

_EXERCISE_THE_APP = """
import json, sys
from app import create_app
app = create_app()
client = app.test_client()
headers = {"X-Forwarded-Proto": "https"}
credentials = {"email": "oo@example.com", "password": "optimised mode passphrase"}
register = client.post("/api/v1/users", json=credentials, headers=headers)
login = client.post("/api/v1/auth/login", json=credentials, headers=headers)
token = login.get_json()["data"]["access_token"]
me = client.get("/api/v1/users/me", headers={**headers, "Authorization": f"Bearer {token}"})
invalid = client.post("/api/v1/users", json={"email": "not an email"}, headers=headers)
unknown = client.get("/nowhere", headers=headers)
print(json.dumps({
    "optimize": sys.flags.optimize,
    "statuses": [r.status_code for r in (register, login, me, invalid, unknown)],
    "me": me.get_json()["data"]["email"],
    "invalid": invalid.get_json(),
    "unknown": unknown.get_json(),
    "openapi": client.get("/api/openapi.json", headers=headers).get_json(),
}))
"""


def _optimised_environment(database_url: str) -> dict[str, str]:
    inherited = {name: os.environ[name] for name in ("PATH", "HOME") if name in os.environ}
    return {
        **inherited,
        "APP_ENV": "test",
        "DATABASE_URL": database_url,
        "FLASK_APP": "wsgi.py",
        "PYTHONOPTIMIZE": "2",
    }


def _run(command: list[str], environment: dict[str, str]) -> str:
    completed = subprocess.run(
        command, cwd=REPO_ROOT, env=environment, capture_output=True, text=True, timeout=120
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    return completed.stdout


def test_an_optimised_process_migrates_and_serves_the_api_unchanged(
    tmp_path: Path, make_app
) -> None:
    environment = _optimised_environment(f"sqlite:///{tmp_path / 'optimised.db'}")
    # The interpreter really drops asserts in this mode, or the rest proves nothing.
    _run([sys.executable, "-c", _FAILS_IF_ASSERTS_RUN], environment)

    _run([str(FLASK_CLI), "db", "upgrade"], environment)
    # The project's commands keep their help (given to click, not read from docstrings).
    users_help = _run([str(FLASK_CLI), "users", "--help"], environment)
    assert "Create an admin" in users_help
    assert "Send the queued emails" in _run([str(FLASK_CLI), "--help"], environment)
    report = json.loads(
        _run([sys.executable, "-c", _EXERCISE_THE_APP], environment).splitlines()[-1]
    )

    assert report["optimize"] == 2
    assert report["statuses"] == [201, 200, 200, 422, 404]
    assert report["me"] == "oo@example.com"
    assert (
        report["invalid"]["code"] == "validation_error" and "email" in report["invalid"]["errors"]
    )
    assert report["unknown"]["success"] is False
    normal_app: Flask = make_app()
    normal_document = (
        normal_app.test_client()
        .get("/api/openapi.json", headers={"X-Forwarded-Proto": "https"})
        .get_json()
    )
    assert report["openapi"] == normal_document
    summaries = [
        operation.get("summary")
        for path_item in report["openapi"]["paths"].values()
        for operation in path_item.values()
        if isinstance(operation, dict)
    ]
    assert summaries and all(summaries)


def test_the_project_tools_keep_their_help_under_optimisation(tmp_path: Path) -> None:
    """The benchmark and cluster tools are run with PYTHONOPTIMIZE=2 too (make bench does)."""
    environment = _optimised_environment(f"sqlite:///{tmp_path / 'unused.db'}")
    for module, summary_start in (
        ("benchmarks.run", "`make bench`"),
        ("benchmarks.hook_costs", "Where a request's CPU goes"),
        ("benchmarks.cpu_split", None),
        ("deploy.cluster", "`python -m deploy.cluster`"),
    ):
        help_text = _run([sys.executable, "-m", module, "--help"], environment)
        assert help_text.startswith("usage:"), module
        if summary_start is not None:
            assert summary_start in " ".join(help_text.split()), module
