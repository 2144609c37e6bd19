"""Password hashing (argon2id, OWASP parameters) and the NIST SP 800-63B password policy."""

from __future__ import annotations

import gzip
from functools import cache
from pathlib import Path

from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from app.errors import ValidationError

MIN_LENGTH = 8
MAX_LENGTH = 128
# OWASP Password Storage Cheat Sheet, argon2id: m=19 MiB, t=2, p=1.
HASHER = PasswordHasher(
    time_cost=2, memory_cost=19 * 1024, parallelism=1, hash_len=32, salt_len=16, type=Type.ID
)
# 20,000 common passwords, from Django's bundled list (BSD licence; see app/data/NOTICE).
COMMON_PASSWORDS_FILE = Path(__file__).resolve().parent.parent / "data" / "common-passwords.txt.gz"


def hash_password(password: str) -> str:
    return HASHER.hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    try:
        return HASHER.verify(password_hash, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def needs_rehash(password_hash: str) -> bool:
    return HASHER.check_needs_rehash(password_hash)


@cache
def _dummy_hash() -> str:
    return HASHER.hash("dummy password used to equalise login timing")


def burn_verification_time(password: str) -> None:
    """Verify against a dummy hash so an unknown email costs as long as a wrong password."""
    verify_password(_dummy_hash(), password)


@cache
def common_passwords() -> frozenset[str]:
    with gzip.open(COMMON_PASSWORDS_FILE, "rt", encoding="utf-8") as lines:
        return frozenset(line.strip().lower() for line in lines if line.strip())


def password_problems(password: str, email: str | None = None) -> list[str]:
    """Every reason the password is refused; empty when it is acceptable."""
    problems = []
    if len(password) < MIN_LENGTH:
        problems.append(f"Password must be at least {MIN_LENGTH} characters long.")
    if len(password) > MAX_LENGTH:
        problems.append(f"Password must be at most {MAX_LENGTH} characters long.")
    if email:
        lowered = password.strip().lower()
        if lowered in (email.lower(), email.lower().split("@", 1)[0]):
            problems.append("Password must not be your email address.")
    if password.lower() in common_passwords():
        problems.append("This password is too common; choose a less guessable one.")
    return problems


def check_password_policy(password: str, email: str | None = None, field: str = "password") -> None:
    problems = password_problems(password, email)
    if problems:
        raise ValidationError("The password does not meet the policy.", errors={field: problems})


def warm_up() -> None:
    """Load the common-password list and the dummy hash before the first request needs them."""
    common_passwords()
    _dummy_hash()
