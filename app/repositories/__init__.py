"""Repositories: every database query of the service lives in this package."""

from app.repositories.errors import DuplicateError

__all__ = ["DuplicateError"]
