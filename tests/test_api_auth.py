"""POST /api/v1/auth/login and the checks every bearer token goes through."""

from __future__ import annotations

import base64
import json
import time
import uuid

import jwt
import pytest

from app.config import DEV_JWT_SECRET
from tests.conftest import (
    STRONG_PASSWORD,
    assert_error_envelope,
    bearer,
    login,
    register,
    unique_email,
)


def test_login_issues_an_access_and_a_refresh_token(client, registered_user):
    response = login(client, registered_user["email"].upper())
    assert response.status_code == 200
    data = response.get_json()["data"]
    assert set(data) == {"access_token", "refresh_token", "token_type", "expires_in"}
    assert data["token_type"] == "Bearer" and data["expires_in"] == 900


def test_unknown_email_and_wrong_password_get_the_identical_401(client, registered_user):
    unknown = assert_error_envelope(login(client, unique_email()), 401, "unauthorized")
    wrong = assert_error_envelope(
        login(client, registered_user["email"], "definitely wrong"), 401, "unauthorized"
    )
    unknown.pop("request_id"), wrong.pop("request_id")
    assert unknown == wrong


def test_unknown_email_costs_about_as_long_as_a_wrong_password(client, registered_user):
    def seconds(email: str) -> float:
        started = time.perf_counter()
        login(client, email, "definitely wrong")
        return time.perf_counter() - started

    # Interleaved, and the fastest of each: load on a shared machine only ever adds time.
    wrong_password, unknown_email = [], []
    for _ in range(7):
        wrong_password.append(seconds(registered_user["email"]))
        unknown_email.append(seconds(unique_email()))
    # Both verify an argon2id hash; without the dummy hash the unknown email would be ~100x faster.
    assert 0.33 < min(unknown_email) / min(wrong_password) < 3.0


def test_login_validates_its_body(client):
    body = assert_error_envelope(
        client.post("/api/v1/auth/login", json={"email": "a@example.com"}), 422, "validation_error"
    )
    assert body["errors"] == {"password": ["Missing data for required field."]}


def _forge(claims: dict, secret: str = DEV_JWT_SECRET, algorithm: str = "HS256") -> str:
    return jwt.encode(claims, secret, algorithm=algorithm)


def _claims(subject: str, **changes) -> dict:
    now = time.time()
    return {
        "sub": subject,
        "jti": uuid.uuid4().hex,
        "iat": now,
        "exp": int(now) + 600,
        "type": "access",
        **changes,
    }


def _unsigned(claims: dict) -> str:
    def part(value: dict) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()

    return f"{part({'alg': 'none', 'typ': 'JWT'})}.{part(claims)}."


# The HS512 case signs with the real (short for SHA-512) key on purpose: algorithm confusion.
@pytest.mark.filterwarnings("ignore::jwt.warnings.InsecureKeyLengthWarning")
@pytest.mark.parametrize(
    "make_token",
    [
        pytest.param(lambda user: user["refresh_token"], id="refresh-token-as-access"),
        pytest.param(lambda user: _unsigned(_claims(user["id"])), id="alg-none"),
        pytest.param(lambda user: _forge(_claims(user["id"]), algorithm="HS512"), id="hs512"),
        pytest.param(lambda user: _forge(_claims(user["id"]), secret="x" * 40), id="wrong-key"),
        pytest.param(
            lambda user: _forge(_claims(user["id"], exp=int(time.time()) - 5)), id="expired"
        ),
        pytest.param(
            lambda user: _forge({k: v for k, v in _claims(user["id"]).items() if k != "jti"}),
            id="missing-jti",
        ),
        pytest.param(lambda user: _forge(_claims(user["id"], type="magic")), id="wrong-type"),
        pytest.param(lambda user: _forge(_claims(str(uuid.uuid4()))), id="unknown-user"),
        pytest.param(lambda user: _forge(_claims("not-a-uuid")), id="malformed-subject"),
        pytest.param(lambda user: user["access_token"][:-4] + "AAAA", id="tampered-signature"),
        pytest.param(lambda user: "a" * 5000, id="oversized"),
        pytest.param(lambda user: "not.a.jwt", id="garbage"),
        pytest.param(lambda user: "\u00e9\u00e8", id="non-ascii"),
    ],
)
def test_bad_bearer_tokens_get_401(client, registered_user, make_token):
    response = client.get("/api/v1/users/me", headers=bearer(make_token(registered_user)))
    body = assert_error_envelope(response, 401, "unauthorized")
    assert "Traceback" not in json.dumps(body)


def test_a_forged_token_for_a_real_user_with_the_right_key_works(client, registered_user):
    # The control for the test above: the same construction, correctly signed, is accepted.
    response = client.get(
        "/api/v1/users/me", headers=bearer(_forge(_claims(registered_user["id"])))
    )
    assert response.status_code == 200


def test_register_then_login_then_me_round_trip(client):
    email = unique_email()
    assert register(client, email, STRONG_PASSWORD).status_code == 201
    token = login(client, email).get_json()["data"]["access_token"]
    assert (
        client.get("/api/v1/users/me", headers=bearer(token)).get_json()["data"]["email"] == email
    )
