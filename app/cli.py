"""`flask` commands of the service: `flask users create-admin`, `flask worker` and `flask db`."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click
from flask import Flask
from flask.cli import AppGroup

from app.errors import AppError
from app.state import settings

MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "migrations"

users_cli = AppGroup("users", help="Manage user accounts.")


def _read_password() -> str:
    # Never from argv: it would sit in shell history and in every `ps` listing.
    if sys.stdin.isatty():
        return click.prompt("Password", hide_input=True, confirmation_prompt=True)
    password = sys.stdin.readline().rstrip("\r\n")
    if not password:
        raise click.UsageError("no password on standard input")
    return password


# Help texts are given to click, not left in docstrings: the image runs with -OO, which drops
# docstrings, and `flask --help` must still say what each command does.
@users_cli.command(
    "create-admin", help="Create an admin; the password is prompted for, or read from stdin."
)
@click.option("--email", required=True, help="The admin's email address.")
@click.option("--name", default=None, help="The admin's display name.")
def create_admin(email: str, name: str | None) -> None:
    from app.services import users as users_service

    password = _read_password()
    try:
        user = users_service.create_admin(email, password, name)
    except AppError as error:
        details = "; ".join(m for messages in (error.errors or {}).values() for m in messages)
        raise click.ClickException(f"{error.message} {details}".strip()) from error
    click.echo(f"admin created: {user.email} ({user.id})")


@click.command(
    "worker",
    help="Send the queued emails (RQ worker on REDIS_URL), retrying failures with backoff.",
)
@click.option("--burst", is_flag=True, help="Work until the queue is empty, then exit.")
def worker(burst: bool) -> None:
    from app.email.queue import run_worker

    redis_url = settings().redis_url
    if not redis_url:
        raise click.ClickException(
            "REDIS_URL is not set: emails are sent inline, no worker needed."
        )
    run_worker(redis_url, burst=burst)


def init_migrations(app: Flask) -> click.Group:
    """Bind Flask-Migrate to the app (what `flask db` and in-process migrations need).

    Returns Flask-Migrate's `db` command group, which `init_app` registers on the app.
    """
    from flask_migrate import Migrate

    from app.extensions import db

    Migrate(app, db, directory=str(MIGRATIONS_DIR))
    return app.cli.commands["db"]


class _MigrationsGroup(click.Group):
    """`flask db`, standing in for Flask-Migrate's group until the command is actually run.

    Flask-Migrate imports alembic (and mako, pygments...), about 11 MiB of RSS in every process
    that imports it, and only migrations need it: web workers and `flask worker` never do.
    Click builds a command's context with `make_context` and then invokes the command that
    context names, so handing over the real group's context runs the real group: its options,
    its subcommands and their help, unchanged.
    """

    def __init__(self, app: Flask) -> None:
        super().__init__("db", help="Perform database migrations (Flask-Migrate, alembic).")
        self._app = app

    def make_context(
        self,
        info_name: str | None,
        args: list[str],
        parent: click.Context | None = None,
        **extra: Any,
    ) -> click.Context:
        real = init_migrations(self._app)
        return real.make_context(info_name, args, parent=parent, **extra)


def register_cli(app: Flask) -> None:
    app.cli.add_command(users_cli)
    app.cli.add_command(worker)
    app.cli.add_command(_MigrationsGroup(app))
