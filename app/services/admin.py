"""What admins do to other accounts: list, inspect, change role or status, delete."""

from __future__ import annotations

import math
import uuid
from dataclasses import dataclass

from loguru import logger

from app.models import User
from app.repositories import users as users_repository
from app.services import users as users_service


@dataclass(frozen=True)
class Page:
    items: list[User]
    page: int
    per_page: int
    total: int

    @property
    def pages(self) -> int:
        return math.ceil(self.total / self.per_page)

    @property
    def meta(self) -> dict[str, int]:
        return {
            "page": self.page,
            "per_page": self.per_page,
            "total": self.total,
            "pages": self.pages,
        }


def list_users(
    page: int = 1,
    per_page: int = 20,
    sort: str = "-created_at",
    q: str | None = None,
    role: str | None = None,
    is_active: bool | None = None,
) -> Page:
    items, total = users_repository.list_page(page, per_page, sort, q, role, is_active)
    return Page(items=items, page=page, per_page=per_page, total=total)


def update_user(
    user_id: uuid.UUID,
    name: str | None = users_service.UNSET,
    role: str | None = None,
    is_active: bool | None = None,
) -> User:
    user = users_service.get_user(user_id)
    if users_service.removes_an_active_admin(user, role=role, active=is_active):
        users_service.guard_last_admin(user)
    if name is not users_service.UNSET:
        user.name = (name or "").strip() or None
    if role is not None:
        user.role = role
    if is_active is not None:
        user.is_active = is_active
    users_repository.commit()
    logger.bind(target_user_id=str(user.id), role=user.role, is_active=user.is_active).info(
        "account changed by an admin"
    )
    return user


def delete_user(user_id: uuid.UUID) -> None:
    users_service.delete_user(users_service.get_user(user_id))
