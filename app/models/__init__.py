"""SQLAlchemy models; importing this package registers every table on the metadata."""

from app.models.one_time_token import OneTimeToken
from app.models.user import ROLES, User

__all__ = ["ROLES", "OneTimeToken", "User"]
