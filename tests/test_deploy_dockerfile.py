"""The Dockerfile, read as an operator would check it (there is no Docker engine in CI).

Its install steps were also run by hand: see docs/deployment.md, "Checking the image without
Docker"; the HEALTHCHECK command itself is run here against a real gunicorn.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
from dataclasses import dataclass, field

import pytest
import requests

from tests.processes import REPO_ROOT, free_port, gunicorn_server

DOCKERFILE = REPO_ROOT / "Dockerfile"
DOCKERIGNORE = REPO_ROOT / ".dockerignore"


@dataclass
class Stage:
    image: str
    name: str | None
    instructions: list[tuple[str, str]] = field(default_factory=list)

    def all(self, keyword: str) -> list[str]:
        return [value for name, value in self.instructions if name == keyword]


def parse_dockerfile(text: str) -> tuple[dict[str, str], list[Stage]]:
    """Global ARG defaults and the stages, each with its (KEYWORD, arguments) instructions."""
    logical_lines, current = [], ""
    for raw in text.splitlines():
        line = raw.strip()
        if not current and (not line or line.startswith("#")):
            continue
        if line.startswith("#"):
            continue  # a comment inside a continued instruction
        if line.endswith("\\"):
            current += line[:-1] + " "
            continue
        logical_lines.append(current + line)
        current = ""
    arguments: dict[str, str] = {}
    stages: list[Stage] = []
    for line in logical_lines:
        keyword, _, value = line.partition(" ")
        keyword = keyword.upper()
        if keyword == "FROM":
            image, _, alias = re.sub(r"\s+AS\s+", " AS ", value, flags=re.I).partition(" AS ")
            image = re.sub(r"\$\{(\w+)\}", lambda match: arguments[match.group(1)], image)
            stages.append(Stage(image.strip(), alias.strip() or None))
        elif keyword == "ARG" and not stages:
            name, _, default = value.partition("=")
            arguments[name] = default
        elif stages:
            stages[-1].instructions.append((keyword, value.strip()))
    return arguments, stages


@pytest.fixture(scope="module")
def stages() -> list[Stage]:
    return parse_dockerfile(DOCKERFILE.read_text())[1]


def test_the_image_is_built_in_stages_from_a_slim_python_base(stages):
    assert len(stages) >= 2
    for stage in stages:
        assert re.fullmatch(r"python:3\.\d+-slim(-\w+)?", stage.image), stage.image
    # One base for all stages: the virtualenv built in the first runs in the last.
    assert len({stage.image for stage in stages}) == 1


def test_only_runtime_dependencies_reach_the_final_image(stages):
    build, final = stages[0], stages[-1]
    installs = " ".join(build.all("RUN"))
    assert "-r /tmp/requirements.txt" in installs and "pip check" in installs
    assert "requirements-dev" not in DOCKERFILE.read_text()
    # The final stage copies the built virtualenv; it installs nothing itself.
    assert not any("pip install" in command for command in final.all("RUN"))
    assert f"--from={build.name} /opt/venv /opt/venv" in final.all("COPY")
    copied = " ".join(final.all("COPY"))
    for needed in ("app", "migrations", "wsgi.py", "gunicorn.conf.py"):
        assert re.search(rf"(^|\s){re.escape(needed)}(\s|$)", copied), needed
    assert "tests" not in copied.split()


def test_the_app_runs_as_an_unprivileged_user(stages):
    final = stages[-1]
    [user] = final.all("USER")
    assert user.split(":")[0] not in ("root", "0")
    keywords = [keyword for keyword, _ in final.instructions]
    # Everything after USER runs unprivileged: no RUN or COPY may come after it.
    after_user = keywords[keywords.index("USER") + 1 :]
    assert "RUN" not in after_user and "COPY" not in after_user


def test_gunicorn_is_the_command_and_migrations_are_not_run_at_start(stages):
    final = stages[-1]
    assert not final.all("ENTRYPOINT"), "an ENTRYPOINT would stop `flask db upgrade` runs"
    [command] = final.all("CMD")
    assert json.loads(command) == ["gunicorn", "-c", "gunicorn.conf.py", "wsgi:app"]
    assert "db upgrade" not in command
    # ...and `flask db upgrade` finds the app without flags.
    assert "FLASK_APP=wsgi.py" in " ".join(final.all("ENV")).split()


def healthcheck_command(stages: list[Stage]) -> list[str]:
    [healthcheck] = stages[-1].all("HEALTHCHECK")
    options, _, command = healthcheck.partition("CMD ")
    assert "--timeout=" in options and "--interval=" in options
    return json.loads(command)


def test_the_healthcheck_asks_for_liveness_only(stages):
    command = healthcheck_command(stages)
    assert command[0] == "python"
    assert "/health/live" in command[-1]


def test_the_build_context_is_an_allow_list_without_secrets_or_tests():
    lines = [
        line.strip()
        for line in DOCKERIGNORE.read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert lines[0] == "*"
    allowed = {line[1:].rstrip("/") for line in lines if line.startswith("!")}
    assert allowed == {"requirements.txt", "wsgi.py", "gunicorn.conf.py", "app", "migrations"}


@pytest.mark.slow
def test_the_healthcheck_command_fails_when_nothing_listens_and_follows_the_endpoint(
    stages, tmp_path
):
    command = healthcheck_command(stages)
    command = [sys.executable, *command[1:]]  # the image's `python` is the venv's

    def healthcheck(port: int) -> int:
        environment = {**os.environ, "PORT": str(port)}
        return subprocess.run(command, env=environment, capture_output=True, timeout=10).returncode

    assert healthcheck(free_port()) != 0, shlex.join(command)
    environment = {
        "APP_ENV": "development",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'served.db'}",
        "WEB_CONCURRENCY": "1",
    }
    with gunicorn_server(environment, tmp_path / "gunicorn.log") as server:
        port = int(server.base_url.rsplit(":", 1)[1])
        live = requests.get(server.base_url + "/health/live", timeout=5)
        # Healthy exactly when /health/live answers 2xx (it does once the health endpoints
        # are in; until then it is a JSON 404 and the container would be reported unhealthy).
        assert (healthcheck(port) == 0) == live.ok


def test_every_path_the_dockerfile_copies_exists(stages):
    for stage in stages:
        for value in stage.all("COPY"):
            if "--from=" in value:
                continue  # copied from another stage, not from the repository
            *sources, _destination = [part for part in value.split() if not part.startswith("--")]
            for source in sources:
                assert (REPO_ROOT / source).exists(), source


def test_the_image_runs_optimised_with_bytecode_compiled_at_that_level(stages):
    final = stages[-1]
    assert "PYTHONOPTIMIZE=2" in " ".join(final.all("ENV")).split()
    # Without bytecode at level 2, every process would compile the virtualenv at start:
    # PYTHONDONTWRITEBYTECODE and a read-only tree mean nothing is cached at run time.
    compiles = [command for command in final.all("RUN") if "compileall" in command]
    assert any(
        "-OO" in command.split()
        and "/app" in command.split()
        and "/opt/venv/lib" in command.split()
        for command in compiles
    ), compiles


def test_psycopg_is_built_against_the_system_libpq_with_no_compiler_in_the_final_image(stages):
    build, final = stages[0], stages[-1]
    build_commands = " ".join(build.all("RUN"))
    # Only psycopg's C module is built from source; everything else stays wheels only.
    assert "--only-binary=:all: --no-binary=psycopg-c" in build_commands
    assert "libpq-dev" in build_commands.split() and "gcc" in build_commands.split()
    final_commands = " ".join(final.all("RUN")).split()
    assert "libpq5" in final_commands
    assert not {"gcc", "libpq-dev", "build-essential"} & set(final_commands)
    # The C implementation or nothing: a wheel-less fallback would lose the shared libpq.
    assert "PSYCOPG_IMPL=c" in " ".join(final.all("ENV")).split()
    assert "psycopg[c]==" in (REPO_ROOT / "requirements.txt").read_text()
