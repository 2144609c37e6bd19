"""`flask` commands of the service."""

from __future__ import annotations

from flask import Flask


def register_cli(app: Flask) -> None:
    """Commands are added here as features need them (users create-admin, worker)."""
