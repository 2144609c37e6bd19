"""Access tokens verified once per app and remembered only while PyJWT would still accept them."""

from __future__ import annotations

import threading
import time
import uuid
from datetime import datetime
from types import SimpleNamespace

import jwt
import pytest

from app.config import DEV_JWT_SECRET
from app.errors import UnauthorizedError
from app.extensions import db
from app.models import User
from app.services import tokens, verified_tokens
from app.services.tokens import TokenClaims
from app.services.verified_tokens import VerifiedTokens, still_valid
from app.state import app_state
from tests.conftest import (
    STRONG_PASSWORD,
    assert_error_envelope,
    bearer,
    login,
    register,
    unique_email,
)

ME = "/api/v1/users/me"
# A fixed clock with a fractional part: PyJWT compares `exp` and `iat` as integers with it.
NOW = 1_800_000_000.5


def _claims(issued_at: float = NOW - 60, expires_at: int = int(NOW) + 600) -> TokenClaims:
    return TokenClaims(
        subject=str(uuid.uuid4()),
        jti=uuid.uuid4().hex,
        issued_at=issued_at,
        expires_at=expires_at,
        token_type=tokens.ACCESS,
        family_id=uuid.uuid4().hex,
    )


@pytest.fixture
def frozen_clock(monkeypatch):
    """The memo's clock, settable by the test."""
    clock = SimpleNamespace(now=NOW)
    monkeypatch.setattr(verified_tokens, "time", SimpleNamespace(time=lambda: clock.now))
    return clock


def test_a_remembered_token_is_answered_until_it_expires_then_forgotten(frozen_clock):
    memo: VerifiedTokens[TokenClaims] = VerifiedTokens()
    claims = _claims(expires_at=int(NOW) + 10)
    assert memo.get("a.b.c") is None
    memo.remember("a.b.c", claims)
    assert memo.get("a.b.c") is claims
    assert memo.get("x.y.z") is None
    frozen_clock.now = claims.expires_at - 0.001
    assert memo.get("a.b.c") is claims
    # PyJWT's rule: expired at `exp` itself.
    frozen_clock.now = claims.expires_at
    assert memo.get("a.b.c") is None
    assert len(memo) == 0


def test_a_clock_stepped_back_before_iat_is_not_answered_from_memory(frozen_clock):
    memo: VerifiedTokens[TokenClaims] = VerifiedTokens()
    memo.remember("a.b.c", _claims(issued_at=NOW - 1))
    frozen_clock.now = NOW - 5
    assert memo.get("a.b.c") is None


def _pyjwt_clock_at(now: float) -> type[datetime]:
    """A datetime class whose now() (what PyJWT reads, `datetime.now(tz=timezone.utc)`) is `now`."""

    class FrozenDatetime(datetime):
        @classmethod
        def now(cls, tz=None):  # noqa: ANN001, ANN206 - datetime's own signature
            return datetime.fromtimestamp(now, tz)

    return FrozenDatetime


@pytest.mark.parametrize("now", [NOW, float(int(NOW))], ids=["fractional-now", "whole-now"])
@pytest.mark.parametrize("iat_offset", [-3600, -1, -0.5, 0, 0.4, 0.6, 1, 30])
@pytest.mark.parametrize("exp_offset", [-1, -0.5, 0, 0.5, 1, 600])
def test_still_valid_agrees_with_pyjwt_at_every_boundary(monkeypatch, now, iat_offset, exp_offset):
    # The memo must never accept a token that verifying it again would refuse, nor the other
    # way round: same clock, same claims, both verdicts.
    monkeypatch.setattr(jwt.api_jwt, "datetime", _pyjwt_clock_at(now))
    iat, exp = now + iat_offset, int(now + exp_offset)
    token = jwt.encode(
        {"sub": "s", "jti": "j", "type": "access", "iat": iat, "exp": exp},
        DEV_JWT_SECRET,
        algorithm="HS256",
    )
    try:
        jwt.decode(token, DEV_JWT_SECRET, algorithms=["HS256"])
        pyjwt_accepts = True
    except (jwt.ExpiredSignatureError, jwt.ImmatureSignatureError):
        pyjwt_accepts = False
    assert still_valid(_claims(issued_at=iat, expires_at=exp), now) is pyjwt_accepts


def test_a_full_memo_forgets_its_oldest_token_first():
    memo: VerifiedTokens[TokenClaims] = VerifiedTokens(capacity=3)
    remembered = {f"token-{index}": _claims(issued_at=0) for index in range(4)}
    for token in list(remembered)[:3]:
        memo.remember(token, remembered[token])
    # Remembering a token again does not push another one out.
    memo.remember("token-1", remembered["token-1"])
    assert len(memo) == 3
    memo.remember("token-3", remembered["token-3"])
    assert len(memo) == 3
    assert memo.get("token-0") is None
    assert [memo.get(f"token-{index}") for index in (1, 2, 3)] == [
        remembered[f"token-{index}"] for index in (1, 2, 3)
    ]


def test_threads_remembering_at_once_keep_the_memo_within_its_capacity():
    memo: VerifiedTokens[TokenClaims] = VerifiedTokens(capacity=50)
    claims = _claims(issued_at=0, expires_at=int(time.time()) + 600)
    failures: list[BaseException] = []

    def remember_many(thread_index: int) -> None:
        try:
            for index in range(2000):
                token = f"{thread_index}-{index}"
                memo.remember(token, claims)
                memo.get(token)
        except BaseException as error:  # noqa: BLE001 - reported by the assertion below
            failures.append(error)

    threads = [threading.Thread(target=remember_many, args=(index,)) for index in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
    assert 0 < len(memo) <= 50


def test_a_memo_needs_room_for_one_token():
    with pytest.raises(ValueError):
        VerifiedTokens(capacity=0)


@pytest.fixture
def decodes(monkeypatch) -> list[str]:
    """Every token PyJWT decodes from here on."""
    seen: list[str] = []
    real_decode = jwt.decode

    def counting_decode(token, *args, **kwargs):  # noqa: ANN001, ANN002, ANN003, ANN202
        seen.append(token)
        return real_decode(token, *args, **kwargs)

    monkeypatch.setattr(tokens.jwt, "decode", counting_decode)
    return seen


@pytest.mark.parametrize("with_redis", [False, True], ids=["memory-store", "redis"])
def test_an_access_token_is_decoded_once_however_many_requests_carry_it(
    make_app, decodes, with_redis, request
):
    overrides = {"REDIS_URL": request.getfixturevalue("redis_url")} if with_redis else {}
    client = make_app(**overrides).test_client()
    email = unique_email()
    assert register(client, email).status_code == 201
    access_token = login(client, email).get_json()["data"]["access_token"]
    for _ in range(3):
        assert client.get(ME, headers=bearer(access_token)).status_code == 200
    assert decodes.count(access_token) == 1
    with client.application.app_context():
        assert app_state().verified_access_tokens.get(access_token) is not None


def test_refresh_tokens_and_refused_tokens_are_never_remembered(client, registered_user, decodes):
    refresh_token = registered_user["refresh_token"]
    with client.application.app_context():
        memo = app_state().verified_access_tokens
        for _ in range(2):
            tokens.verify(refresh_token, tokens.REFRESH)
            # A refresh token offered as an access token is refused, each time afresh.
            with pytest.raises(UnauthorizedError):
                tokens.verify(refresh_token, tokens.ACCESS)
        assert decodes.count(refresh_token) == 4
        tampered = registered_user["access_token"][:-4] + "AAAA"
        for _ in range(2):
            with pytest.raises(UnauthorizedError):
                tokens.verify(tampered, tokens.ACCESS)
        assert decodes.count(tampered) == 2
        assert memo.get(refresh_token) is None and memo.get(tampered) is None
        assert len(memo) == 0


def test_a_remembered_access_token_is_refused_once_it_expires(client, registered_user):
    # Signed with the app's key, about two seconds to live: remembered by the first request.
    issued_at = time.time()
    expires_at = int(issued_at) + 2
    token = jwt.encode(
        {
            "sub": registered_user["id"],
            "jti": uuid.uuid4().hex,
            "iat": issued_at,
            "exp": expires_at,
            "type": tokens.ACCESS,
        },
        DEV_JWT_SECRET,
        algorithm="HS256",
    )
    assert client.get(ME, headers=bearer(token)).status_code == 200
    with client.application.app_context():
        assert app_state().verified_access_tokens.get(token) is not None
    time.sleep(max(0.0, expires_at - time.time()) + 0.05)
    assert_error_envelope(client.get(ME, headers=bearer(token)), 401, "unauthorized")
    with client.application.app_context():
        assert app_state().verified_access_tokens.get(token) is None


@pytest.mark.parametrize("with_redis", [False, True], ids=["memory-store", "redis"])
def test_a_remembered_token_still_meets_logout_password_change_and_deactivation(
    make_app, with_redis, request
):
    overrides = {"REDIS_URL": request.getfixturevalue("redis_url")} if with_redis else {}
    client = make_app(**overrides).test_client()

    def remembered_session() -> tuple[str, str]:
        email = unique_email()
        assert register(client, email).status_code == 201
        access_token = login(client, email).get_json()["data"]["access_token"]
        assert client.get(ME, headers=bearer(access_token)).status_code == 200
        with client.application.app_context():
            assert app_state().verified_access_tokens.get(access_token) is not None
        return email, access_token

    _, logged_out = remembered_session()
    assert client.post("/api/v1/auth/logout", headers=bearer(logged_out)).status_code == 204
    assert_error_envelope(client.get(ME, headers=bearer(logged_out)), 401, "unauthorized")

    _, changed = remembered_session()
    response = client.post(
        "/api/v1/users/me/password",
        json={"current_password": STRONG_PASSWORD, "new_password": "a brand new passphrase 9"},
        headers=bearer(changed),
    )
    assert response.status_code == 204
    assert_error_envelope(client.get(ME, headers=bearer(changed)), 401, "unauthorized")

    email, deactivated = remembered_session()
    with client.application.app_context():
        user = db.session.execute(db.select(User).filter_by(email=email)).scalar_one()
        user.is_active = False
        db.session.commit()
    assert_error_envelope(client.get(ME, headers=bearer(deactivated)), 403, "forbidden")


def test_what_one_app_verified_means_nothing_to_an_app_with_another_secret(make_app):
    first = make_app().test_client()
    second = make_app(JWT_SECRET="another-secret-" + "x" * 40).test_client()
    email = unique_email()
    assert register(first, email).status_code == 201
    access_token = login(first, email).get_json()["data"]["access_token"]
    assert first.get(ME, headers=bearer(access_token)).status_code == 200
    assert_error_envelope(second.get(ME, headers=bearer(access_token)), 401, "unauthorized")
    with second.application.app_context():
        assert len(app_state().verified_access_tokens) == 0


def test_the_memo_is_one_per_app(make_app):
    first, second = make_app(), make_app()
    with first.app_context():
        first_memo = app_state().verified_access_tokens
    with second.app_context():
        assert app_state().verified_access_tokens is not first_memo
