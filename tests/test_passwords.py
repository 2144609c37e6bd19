"""Password hashing and policy, without HTTP."""

from __future__ import annotations

import pytest
from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError

from app.errors import ValidationError
from app.services import passwords


def test_hashes_are_argon2id_with_owasp_parameters():
    encoded = passwords.hash_password("a long enough passphrase")
    assert encoded.startswith("$argon2id$")
    assert "m=19456,t=2,p=1" in encoded
    assert passwords.verify_password(encoded, "a long enough passphrase")
    assert not passwords.verify_password(encoded, "another passphrase")


def test_a_corrupt_hash_is_a_failed_verification_not_a_crash():
    assert passwords.verify_password("not-a-hash", "whatever") is False
    with pytest.raises(InvalidHashError):
        PasswordHasher().verify("not-a-hash", "whatever")


def test_hashes_with_old_parameters_need_rehash():
    weaker = PasswordHasher(time_cost=1, memory_cost=8 * 1024, parallelism=1, type=Type.ID)
    assert passwords.needs_rehash(weaker.hash("secret passphrase"))
    assert not passwords.needs_rehash(passwords.hash_password("secret passphrase"))


def test_bundled_common_password_list_is_loaded():
    common = passwords.common_passwords()
    assert len(common) > 19000
    assert {"password", "123456", "qwerty"} <= common


@pytest.mark.parametrize(
    ("password", "expected"),
    [
        ("short", "at least 8"),
        ("x" * 129, "at most 128"),
        ("password1", "too common"),
        ("Qwertyuiop", "too common"),
        ("someone@example.com", "not be your email"),
        ("someone", "at least 8"),
    ],
)
def test_policy_refuses(password, expected):
    with pytest.raises(ValidationError) as caught:
        passwords.check_password_policy(password, "someone@example.com")
    assert any(expected in message for message in caught.value.errors["password"])


def test_policy_accepts_a_long_uncommon_passphrase():
    passwords.check_password_policy("purple monkey dishwasher 42", "someone@example.com")
    assert passwords.password_problems("x" * 128) == []


def test_argon2_runs_on_one_thread_per_process_whichever_request_thread_asks(monkeypatch):
    # Each hash holds 19 MiB; on one thread that buffer is reused instead of kept per thread.
    import threading
    from concurrent.futures import ThreadPoolExecutor

    hashing_threads = set()
    real_hasher = passwords.HASHER

    class RecordingHasher:
        def hash(self, password: str) -> str:
            hashing_threads.add(threading.current_thread().name)
            return real_hasher.hash(password)

    monkeypatch.setattr(passwords, "HASHER", RecordingHasher())
    with ThreadPoolExecutor(max_workers=4) as request_threads:
        hashes = list(request_threads.map(passwords.hash_password, ["passphrase one"] * 4))
    assert len(set(hashes)) == 4
    assert len(hashing_threads) == 1 and next(iter(hashing_threads)).startswith("argon2")
