"""Single-use tokens sent by email (verification, password reset): only their hash is stored."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import CheckConstraint, ForeignKey, String, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from app.extensions import db
from app.models.types import UTCDateTime, utc_now

VERIFY_EMAIL = "verify_email"
PASSWORD_RESET = "password_reset"
PURPOSES = (VERIFY_EMAIL, PASSWORD_RESET)


class OneTimeToken(db.Model):
    __tablename__ = "one_time_tokens"
    __table_args__ = (
        CheckConstraint("purpose IN ('verify_email', 'password_reset')", name="purpose_valid"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    user_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    purpose: Mapped[str] = mapped_column(String(32))
    # sha256 hex of the emailed token: a leaked table grants nothing, and a 256-bit random
    # token needs no slow hash (nothing to brute-force).
    token_hash: Mapped[str] = mapped_column(String(64), unique=True, index=True)
    # The address the token was sent to: verifying proves control of *that* address.
    email: Mapped[str] = mapped_column(String(254))
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utc_now)

    def __repr__(self) -> str:
        return f"<OneTimeToken {self.purpose} {self.id}>"
