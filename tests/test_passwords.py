"""Password hashing and policy, without HTTP."""

from __future__ import annotations

import subprocess
import sys

import pytest
from argon2 import PasswordHasher, Type, extract_parameters
from argon2.exceptions import InvalidHashError

from app import malloc
from app.errors import ValidationError
from app.services import passwords
from tests.processes import REPO_ROOT


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
    assert all(word in common for word in ("password", "123456", "qwerty"))


def test_the_word_list_matches_whole_words_only():
    words = passwords.WordList(["password", "dragon", "123456"])
    assert len(words) == 3
    assert "password" in words and "dragon" in words
    for absent in ("passwor", "assword", "password1", "dragon\npassword", "", "\n", "\ud800", None):
        assert absent not in words


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


def test_an_idle_hashing_thread_releases_memory_once_then_hashes_again(monkeypatch):
    import threading
    import time

    released = threading.Event()
    releases = []

    def recording_release() -> bool:
        releases.append(time.monotonic())
        released.set()
        return True

    monkeypatch.setattr(passwords, "IDLE_RELEASE_S", 0.05)
    monkeypatch.setattr(passwords, "release_free_memory", recording_release)
    first = passwords.hash_password("passphrase one")
    assert released.wait(5)
    # Once per pause, not a polling loop: the thread then sleeps until the next operation.
    time.sleep(0.3)
    assert len(releases) == 1
    assert passwords.verify_password(first, "passphrase one")
    assert not passwords.verify_password(first, "passphrase two")
    time.sleep(0.3)
    assert len(releases) == 2


def test_a_failing_operation_reaches_the_caller_and_the_thread_keeps_serving(monkeypatch):
    class BrokenHasher:
        def hash(self, password: str) -> str:
            raise RuntimeError("hasher failed")

    real_hasher = passwords.HASHER
    monkeypatch.setattr(passwords, "HASHER", BrokenHasher())
    with pytest.raises(RuntimeError, match="hasher failed"):
        passwords.hash_password("passphrase one")
    monkeypatch.setattr(passwords, "HASHER", real_hasher)
    assert passwords.verify_password(passwords.hash_password("passphrase one"), "passphrase one")


@pytest.mark.skipif(not malloc._glibc(), reason="glibc's malloc_trim and mallopt only")
def test_the_argon2_buffer_goes_back_to_the_os_when_the_hashing_thread_is_idle():
    # In a fresh process set up as a gunicorn worker is (one malloc arena): the 19 MiB buffer
    # stays through a burst of hashes, then is returned once the thread has been idle.
    script = (
        "import time\n"
        "from app.malloc import use_one_malloc_arena\n"
        "assert use_one_malloc_arena()\n"
        "from app.services import passwords\n"
        "def rss():\n"
        "    for line in open('/proc/self/status'):\n"
        "        if line.startswith('VmRSS'):\n"
        "            return int(line.split()[1]) / 1024\n"
        "hashed = [passwords.hash_password('passphrase one') for _ in range(3)]\n"
        "busy = rss()\n"
        "assert passwords.verify_password(hashed[0], 'passphrase one')\n"
        "reused = rss()\n"
        "time.sleep(passwords.IDLE_RELEASE_S + 1)\n"
        "idle = rss()\n"
        "assert passwords.verify_password(hashed[1], 'passphrase one')\n"
        "print(busy, reused, idle)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    busy, reused, idle = (float(value) for value in result.stdout.split())
    assert reused - busy < 2, "a burst must reuse the buffer, not allocate another"
    assert busy - idle > 15, f"the buffer was not released: {busy:.1f} -> {idle:.1f} MiB"


@pytest.mark.skipif(not malloc._glibc(), reason="glibc's malloc_trim only")
def test_a_second_argon2_buffer_forced_by_fragmentation_is_given_back_at_once():
    # Under load, request threads allocate from the same heap as the hashing thread. Made
    # deterministic here: a block takes most of the freed buffer and another sits above it,
    # so the next buffer no longer fits where the last one was and the heap grows by a whole
    # buffer. Without the trim the process holds both (measured: 80 -> 99 MiB).
    script = (
        "import ctypes, time\n"
        "from app.malloc import use_one_malloc_arena\n"
        "assert use_one_malloc_arena()\n"
        "from app.services import passwords\n"
        "libc = ctypes.CDLL(None)\n"
        "libc.malloc.restype = ctypes.c_void_p\n"
        "libc.malloc.argtypes = [ctypes.c_size_t]\n"
        "libc.free.argtypes = [ctypes.c_void_p]\n"
        "def rss():\n"
        "    for line in open('/proc/self/status'):\n"
        "        if line.startswith('VmRSS'):\n"
        "            return int(line.split()[1]) / 1024\n"
        "hashed = [passwords.hash_password('passphrase one') for _ in range(3)]\n"
        "before = rss()\n"
        "taker = libc.malloc(18 << 20)\n"
        "ctypes.memset(taker, 1, 18 << 20)\n"
        "above = libc.malloc(1 << 20)\n"
        "ctypes.memset(above, 1, 1 << 20)\n"
        "libc.free(taker)\n"
        "assert passwords.verify_password(hashed[0], 'passphrase one')\n"
        "time.sleep(0.3)  # the hashing thread trims after answering\n"
        "print(before, rss())\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    before, after = (float(value) for value in result.stdout.split())
    assert after - before < 5, f"two buffers held: {before:.1f} -> {after:.1f} MiB"


def test_free_memory_is_trimmed_once_half_a_buffer_more_is_resident_than_the_floor(monkeypatch):
    trims: list[int] = []
    monkeypatch.setattr(malloc, "release_free_memory", lambda: trims.append(1) or True)
    trimmer = malloc.ResidentGrowthTrimmer(threshold_bytes=10)

    # The first operation sets the floor; staying within the threshold costs no trim.
    for resident in (100, 105, 110, 104):
        assert not trimmer.after_operation(resident)
    assert trims == []
    # A buffer more resident, wherever it was placed: one trim.
    assert trimmer.after_operation(121)
    assert trims == [1]
    # The next operation sets the floor anew: memory a trim could not return (live) raises
    # it rather than being trimmed at every operation.
    for resident in (121, 125, 130):
        assert not trimmer.after_operation(resident)
    assert trims == [1]
    # A lower figure (an idle release before the operation) lowers the floor.
    assert not trimmer.after_operation(90)
    assert trimmer.after_operation(120)
    assert trims == [1, 1]


def test_without_a_resident_figure_nothing_is_trimmed(monkeypatch):
    monkeypatch.setattr(malloc, "resident_bytes", lambda: None)
    monkeypatch.setattr(malloc, "release_free_memory", lambda: pytest.fail("trimmed"))
    trimmer = malloc.ResidentGrowthTrimmer(threshold_bytes=10)

    assert not trimmer.after_operation()
    assert not trimmer.after_operation()


def test_resident_bytes_reads_this_process(monkeypatch):
    resident = malloc.resident_bytes()
    assert resident is not None and 10 * 2**20 < resident < 2**32
    block = bytearray(32 * 2**20)  # touched: zero-filled pages are written
    assert malloc.resident_bytes() - resident > 24 * 2**20
    del block


def test_the_dummy_hash_has_the_hashers_parameters_and_matches_no_password():
    dummy = passwords._dummy_hash()
    parameters = extract_parameters(dummy)
    assert parameters == extract_parameters(passwords.hash_password("any long passphrase"))
    assert not passwords.needs_rehash(dummy)
    for attempt in ("", "password", "dummy password used to equalise login timing"):
        assert passwords.verify_password(dummy, attempt) is False
