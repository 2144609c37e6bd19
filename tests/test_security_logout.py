"""POST /api/v1/auth/logout: the access token dies at once, and so does the session's refresh."""

from __future__ import annotations

import pytest

from app.services import tokens
from app.state import app_state
from tests.conftest import assert_error_envelope, bearer, login, register, unique_email

LOGOUT = "/api/v1/auth/logout"


@pytest.fixture(params=["memory", "redis"])
def store_client(request, make_app):
    """A client on the in-memory token store (development) and on Redis (deployments)."""
    if request.param == "redis":
        app = make_app(REDIS_URL=request.getfixturevalue("redis_url"))
    else:
        app = make_app()
    return app.test_client()


def _session(client) -> dict:
    email = unique_email()
    assert register(client, email).status_code == 201
    return login(client, email).get_json()["data"]


def _claims(client, token: str, token_type: str):
    with client.application.app_context():
        return tokens.decode(token, token_type)


def test_logout_revokes_the_access_token_and_the_refresh_token(store_client):
    session = _session(store_client)
    refresh_claims = _claims(store_client, session["refresh_token"], tokens.REFRESH)
    response = store_client.post(
        LOGOUT,
        json={"refresh_token": session["refresh_token"]},
        headers=bearer(session["access_token"]),
    )
    assert response.status_code == 204 and response.get_data() == b""
    me = store_client.get("/api/v1/users/me", headers=bearer(session["access_token"]))
    assert_error_envelope(me, 401, "unauthorized")
    with store_client.application.app_context():
        with pytest.raises(Exception, match="invalid or has expired"):
            tokens.decode(session["refresh_token"], tokens.REFRESH)
        # The whole refresh family is dead, so a sibling rotated later cannot revive it.
        assert app_state().token_store.is_family_revoked(refresh_claims.family_id)


def test_the_access_token_revocation_lasts_until_the_token_expires(make_app, redis_url):
    import redis

    client = make_app(REDIS_URL=redis_url).test_client()
    session = _session(client)
    claims = _claims(client, session["access_token"], tokens.ACCESS)
    client.post(LOGOUT, headers=bearer(session["access_token"]))
    ttl = redis.Redis.from_url(redis_url).ttl(f"steadfast:tokens:revoked:{claims.jti}")
    assert 0 < ttl <= 900


def test_logout_without_a_refresh_token_revokes_the_access_token(store_client):
    session = _session(store_client)
    assert store_client.post(LOGOUT, headers=bearer(session["access_token"])).status_code == 204
    assert (
        store_client.get("/api/v1/users/me", headers=bearer(session["access_token"])).status_code
        == 401
    )
    # The refresh token was not given, so it was not touched.
    with store_client.application.app_context():
        assert tokens.decode(session["refresh_token"], tokens.REFRESH)


def test_other_sessions_of_the_user_stay_alive(client, registered_user):
    other = login(client, registered_user["email"]).get_json()["data"]
    response = client.post(
        LOGOUT,
        json={"refresh_token": registered_user["refresh_token"]},
        headers=bearer(registered_user["access_token"]),
    )
    assert response.status_code == 204
    assert client.get("/api/v1/users/me", headers=bearer(other["access_token"])).status_code == 200


def test_logout_needs_a_valid_access_token(client, registered_user):
    assert_error_envelope(client.post(LOGOUT), 401, "unauthorized")
    assert_error_envelope(
        client.post(LOGOUT, headers=bearer(registered_user["refresh_token"])), 401, "unauthorized"
    )


def test_logout_twice_is_refused_the_second_time(client, registered_user):
    headers = bearer(registered_user["access_token"])
    assert client.post(LOGOUT, headers=headers).status_code == 204
    assert_error_envelope(client.post(LOGOUT, headers=headers), 401, "unauthorized")


def test_someone_elses_refresh_token_is_refused_and_nothing_is_revoked(client, registered_user):
    stranger = _session(client)
    response = client.post(
        LOGOUT,
        json={"refresh_token": stranger["refresh_token"]},
        headers=bearer(registered_user["access_token"]),
    )
    assert_error_envelope(response, 401, "unauthorized")
    me = client.get("/api/v1/users/me", headers=bearer(registered_user["access_token"]))
    assert me.status_code == 200
    with client.application.app_context():
        assert tokens.decode(stranger["refresh_token"], tokens.REFRESH)


@pytest.mark.parametrize(
    "body",
    [
        {"refresh_token": "not-a-jwt"},
        {"refresh_token": 42},
        {"refresh_token": "x" * 5000},
        {"refresh_token": "a\x00b"},
        {"refresh_token": "ok", "extra": 1},
    ],
)
def test_a_malformed_refresh_token_is_refused(client, registered_user, body):
    response = client.post(LOGOUT, json=body, headers=bearer(registered_user["access_token"]))
    assert response.status_code in (401, 422)
    assert response.get_json()["success"] is False
    # A refused logout changes nothing.
    me = client.get("/api/v1/users/me", headers=bearer(registered_user["access_token"]))
    assert me.status_code == 200
