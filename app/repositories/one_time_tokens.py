"""One-time token queries: store by hash, spend atomically."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import select, update

from app.extensions import db
from app.models import OneTimeToken


def add(token: OneTimeToken) -> OneTimeToken:
    db.session.add(token)
    db.session.commit()
    return token


def retire_unused(user_id: uuid.UUID, purpose: str, now: datetime) -> None:
    """Mark the user's outstanding tokens of `purpose` as used (a newer one supersedes them)."""
    db.session.execute(
        update(OneTimeToken)
        .where(
            OneTimeToken.user_id == user_id,
            OneTimeToken.purpose == purpose,
            OneTimeToken.used_at.is_(None),
        )
        .values(used_at=now)
    )


def spend(token_hash: str, purpose: str, now: datetime) -> OneTimeToken | None:
    """Mark the live token with this hash as used and return it; None if none is live.

    A conditional UPDATE, not a read-then-write: of two concurrent requests with the same
    token only one changes the row, so the token really is single use.
    """
    result = db.session.execute(
        update(OneTimeToken)
        .where(
            OneTimeToken.token_hash == token_hash,
            OneTimeToken.purpose == purpose,
            OneTimeToken.used_at.is_(None),
            OneTimeToken.expires_at > now,
        )
        .values(used_at=now)
        .execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:
        db.session.rollback()
        return None
    return db.session.execute(
        select(OneTimeToken).where(OneTimeToken.token_hash == token_hash)
    ).scalar_one()
