"""Password hashing (argon2id, OWASP parameters) and the NIST SP 800-63B password policy."""

from __future__ import annotations

import base64
import gzip
import os
import queue
import threading
from collections.abc import Callable, Iterable
from concurrent.futures import Future
from functools import cache
from pathlib import Path
from typing import TypeVar

from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from argon2.low_level import ARGON2_VERSION

from app.errors import ValidationError
from app.malloc import ResidentGrowthTrimmer, release_free_memory

MIN_LENGTH = 8
MAX_LENGTH = 128
# OWASP Password Storage Cheat Sheet, argon2id: m=19 MiB, t=2, p=1.
HASHER = PasswordHasher(
    time_cost=2, memory_cost=19 * 1024, parallelism=1, hash_len=32, salt_len=16, type=Type.ID
)
# 20,000 common passwords, from Django's bundled list (BSD licence; see app/data/NOTICE).
COMMON_PASSWORDS_FILE = Path(__file__).resolve().parent.parent / "data" / "common-passwords.txt.gz"
# Once the hashing thread has had nothing to do for this long, the argon2 buffer goes back to
# the OS: a burst of logins keeps reusing it (no page faults), a quiet worker does not keep
# 19 MiB for the next one. The first hash after a pause pays the page faults (~10 ms of CPU).
IDLE_RELEASE_S = 1.0

Result = TypeVar("Result")


class _HashingThread:
    """Runs every argon2id operation of the process on one thread, one at a time.

    Each operation needs `memory_cost` (19 MiB) of RAM, and glibc keeps a freed buffer of that
    size in the arena of the thread that used it: with every request thread hashing, a worker
    held threads x 19 MiB for good (160 MiB RSS instead of ~100 after a login burst, with 4
    threads). On one thread the buffer is reused, so memory stays bounded whatever the thread
    count, and no CPU is lost: the hash is CPU-bound, so a worker never gains from running two
    at once when, as recommended, there are at least as many workers as cores. The thread is
    (re)created lazily in each process, so it also survives gunicorn forking a preloaded app.

    When no operation has come for IDLE_RELEASE_S, the thread releases the free memory
    (app/malloc.py; under gunicorn the buffer is then in the one arena that can be trimmed).
    A plain queue with a timeout rather than a ThreadPoolExecutor, whose thread cannot notice
    that it is idle: the thread wakes once after a burst and otherwise sleeps.
    """

    def __init__(self) -> None:
        self._jobs: queue.SimpleQueue | None = None
        self._owner_pid: int | None = None
        self._lock = threading.Lock()

    def run(self, operation: Callable[..., Result], *args: object) -> Result:
        done: Future[Result] = Future()
        self._current().put((done, operation, args))
        return done.result()

    def _current(self) -> queue.SimpleQueue:
        with self._lock:
            if self._jobs is None or self._owner_pid != os.getpid():
                self._jobs = queue.SimpleQueue()
                self._owner_pid = os.getpid()
                # A daemon: it waits for work forever and must not hold up the exit.
                threading.Thread(
                    target=_serve, args=(self._jobs,), name="argon2", daemon=True
                ).start()
            return self._jobs


def _serve(jobs: queue.SimpleQueue) -> None:
    holding = False  # an operation ran since the memory was last released
    # Half a buffer: a whole one more resident means a second buffer (app/malloc.py).
    trimmer = ResidentGrowthTrimmer(threshold_bytes=HASHER.memory_cost * 1024 // 2)
    while True:
        try:
            done, operation, args = jobs.get(timeout=IDLE_RELEASE_S if holding else None)
        except queue.Empty:
            release_free_memory()
            holding = False
            continue
        holding = True
        if not done.set_running_or_notify_cancel():
            continue
        # Whatever is raised goes to the caller, as an executor would: a dead thread would hang
        # every later login of the process.
        try:
            done.set_result(operation(*args))
        except BaseException as error:  # noqa: BLE001
            done.set_exception(error)
        trimmer.after_operation()


_hashing_thread = _HashingThread()


def hash_password(password: str) -> str:
    return _hashing_thread.run(HASHER.hash, password)


def _verify(password_hash: str, password: str) -> bool:
    try:
        return HASHER.verify(password_hash, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def verify_password(password_hash: str, password: str) -> bool:
    return _hashing_thread.run(_verify, password_hash, password)


def needs_rehash(password_hash: str) -> bool:
    return HASHER.check_needs_rehash(password_hash)


@cache
def _dummy_hash() -> str:
    """A well-formed hash with HASHER's parameters, a random salt and a random digest.

    Verifying any password against it costs a real verification (the parameters decide the
    work) and always fails; building it costs nothing, where hashing a dummy password cost a
    whole argon2id run of every worker's start-up.
    """
    salt, digest = (_unpadded_b64(os.urandom(size)) for size in (HASHER.salt_len, HASHER.hash_len))
    return (
        f"$argon2id$v={ARGON2_VERSION}"
        f"$m={HASHER.memory_cost},t={HASHER.time_cost},p={HASHER.parallelism}${salt}${digest}"
    )


def _unpadded_b64(data: bytes) -> str:
    # The PHC string format's base64: standard alphabet, no padding.
    return base64.b64encode(data).decode("ascii").rstrip("=")


def burn_verification_time(password: str) -> None:
    """Verify against a dummy hash so an unknown email costs as long as a wrong password."""
    verify_password(_dummy_hash(), password)


class WordList:
    """A read-only set of words kept as one bytes string, for membership tests.

    The 20,000 common passwords take 0.2 MiB this way and 1.6 MiB as a frozenset of str
    objects, in every worker. A lookup scans the bytes (~0.1 ms), once per password checked
    against the policy, beside a ~20 ms argon2 hash.
    """

    def __init__(self, words: Iterable[str]) -> None:
        # Order does not matter to a membership test: no sorting (0.02 s of every start-up).
        unique = set(words)
        self._count = len(unique)
        # Each word between newlines, so a search for "\nword\n" matches whole words only.
        self._blob = ("\n" + "\n".join(unique) + "\n").encode()

    def __contains__(self, word: object) -> bool:
        if not isinstance(word, str) or "\n" in word:
            return False
        # surrogatepass: a lone surrogate (valid in JSON) cannot be listed, and must not raise.
        return f"\n{word}\n".encode("utf-8", "surrogatepass") in self._blob

    def __len__(self) -> int:
        return self._count


@cache
def common_passwords() -> WordList:
    # One word per line; split() drops the surrounding whitespace and the blank lines.
    text = gzip.decompress(COMMON_PASSWORDS_FILE.read_bytes()).decode("utf-8")
    return WordList(text.lower().split())


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
