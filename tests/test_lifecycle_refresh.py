"""POST /api/v1/auth/refresh: rotation, single use, and family revocation on reuse."""

from __future__ import annotations

import time
import uuid

import jwt
import pytest

from app.config import DEV_JWT_SECRET
from tests.conftest import assert_error_envelope, bearer


def refresh(client, refresh_token: str):
    return client.post("/api/v1/auth/refresh", json={"refresh_token": refresh_token})


def test_refresh_returns_a_new_pair_in_the_same_family(client, registered_user):
    response = refresh(client, registered_user["refresh_token"])
    assert response.status_code == 200
    pair = response.get_json()["data"]
    assert set(pair) == {"access_token", "refresh_token", "token_type", "expires_in"}
    assert pair["refresh_token"] != registered_user["refresh_token"]
    old = jwt.decode(registered_user["refresh_token"], options={"verify_signature": False})
    new = jwt.decode(pair["refresh_token"], options={"verify_signature": False})
    assert new["fam"] == old["fam"] and new["jti"] != old["jti"]
    me = client.get("/api/v1/users/me", headers=bearer(pair["access_token"]))
    assert me.status_code == 200


def test_a_refresh_token_works_once(client, registered_user):
    assert refresh(client, registered_user["refresh_token"]).status_code == 200
    assert_error_envelope(refresh(client, registered_user["refresh_token"]), 401, "unauthorized")


def test_reusing_a_spent_refresh_token_revokes_the_whole_family(
    client, registered_user, log_records
):
    first = refresh(client, registered_user["refresh_token"]).get_json()["data"]
    second = refresh(client, first["refresh_token"]).get_json()["data"]
    # The original token comes back (a thief replaying it): the family dies.
    assert_error_envelope(refresh(client, registered_user["refresh_token"]), 401, "unauthorized")
    # Every descendant is dead too: the latest refresh token and the access tokens.
    assert_error_envelope(refresh(client, second["refresh_token"]), 401, "unauthorized")
    for access_token in (first["access_token"], second["access_token"]):
        response = client.get("/api/v1/users/me", headers=bearer(access_token))
        assert_error_envelope(response, 401, "unauthorized")
    assert any("refresh token reused" in r["message"] for r in log_records)


def test_reuse_does_not_touch_other_logins_of_the_same_user(client, registered_user):
    from tests.conftest import login

    other = login(client, registered_user["email"]).get_json()["data"]
    refresh(client, registered_user["refresh_token"])
    refresh(client, registered_user["refresh_token"])  # reuse: this family is revoked
    assert refresh(client, other["refresh_token"]).status_code == 200


def test_reuse_is_detected_through_redis_across_app_instances(make_app, redis_url):
    from tests.conftest import login, register, unique_email

    first_instance = make_app(REDIS_URL=redis_url).test_client()
    second_instance = make_app(REDIS_URL=redis_url).test_client()
    email = unique_email()
    register(first_instance, email)
    pair = login(first_instance, email).get_json()["data"]
    assert refresh(first_instance, pair["refresh_token"]).status_code == 200
    assert_error_envelope(refresh(second_instance, pair["refresh_token"]), 401, "unauthorized")


def _forged(subject: str, **changes) -> str:
    now = time.time()
    claims = {
        "sub": subject,
        "jti": uuid.uuid4().hex,
        "iat": now,
        "exp": int(now) + 600,
        "type": "refresh",
        "fam": uuid.uuid4().hex,
        **changes,
    }
    return jwt.encode(claims, DEV_JWT_SECRET, algorithm="HS256")


@pytest.mark.parametrize(
    "make_token",
    [
        pytest.param(lambda user: user["access_token"], id="access-token-as-refresh"),
        pytest.param(lambda user: user["refresh_token"][:-4] + "AAAA", id="tampered"),
        pytest.param(lambda user: _forged(user["id"], exp=int(time.time()) - 5), id="expired"),
        pytest.param(
            lambda user: jwt.encode(
                {
                    k: v
                    for k, v in jwt.decode(_forged(user["id"]), DEV_JWT_SECRET, ["HS256"]).items()
                    if k != "fam"
                },
                DEV_JWT_SECRET,
                algorithm="HS256",
            ),
            id="no-family",
        ),
        pytest.param(lambda user: _forged(str(uuid.uuid4())), id="unknown-user"),
        pytest.param(lambda user: "not.a.jwt", id="garbage"),
    ],
)
def test_bad_refresh_tokens_get_401(client, registered_user, make_token):
    assert_error_envelope(refresh(client, make_token(registered_user)), 401, "unauthorized")


def test_refresh_validates_its_body(client):
    body = assert_error_envelope(
        client.post("/api/v1/auth/refresh", json={}), 422, "validation_error"
    )
    assert body["errors"] == {"refresh_token": ["Missing data for required field."]}
    assert_error_envelope(
        client.post("/api/v1/auth/refresh", json={"refresh_token": "x" * 5000}),
        422,
        "validation_error",
    )


def test_refresh_of_a_disabled_account_is_forbidden(client, registered_user, app):
    from app.extensions import db
    from app.models import User

    with app.app_context():
        user = db.session.get(User, uuid.UUID(registered_user["id"]))
        user.is_active = False
        db.session.commit()
    assert_error_envelope(refresh(client, registered_user["refresh_token"]), 403, "forbidden")
