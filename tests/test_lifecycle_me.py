"""PATCH /users/me, POST /users/me/password and DELETE /users/me."""

from __future__ import annotations

import threading

from tests.conftest import (
    STRONG_PASSWORD,
    assert_error_envelope,
    bearer,
    login,
    register,
    unique_email,
)

NEW_PASSWORD = "a brand new passphrase 42"


def test_patch_me_changes_the_name(client, registered_user):
    response = client.patch(
        "/api/v1/users/me",
        json={"name": "  Ann Other "},
        headers=bearer(registered_user["access_token"]),
    )
    assert response.status_code == 200
    assert response.get_json()["data"]["name"] == "Ann Other"
    headers = bearer(registered_user["access_token"])
    unchanged = client.patch("/api/v1/users/me", json={}, headers=headers)
    assert unchanged.get_json()["data"]["name"] == "Ann Other"
    cleared = client.patch("/api/v1/users/me", json={"name": None}, headers=headers)
    assert cleared.get_json()["data"]["name"] is None


def test_patch_me_with_a_taken_email_is_409(client, registered_user):
    other = unique_email()
    register(client, other)
    response = client.patch(
        "/api/v1/users/me",
        json={"email": other.upper()},
        headers=bearer(registered_user["access_token"]),
    )
    assert_error_envelope(response, 409, "conflict")


def test_two_users_racing_for_one_new_email_get_one_200_and_one_409(app):
    client = app.test_client()
    tokens = []
    for _ in range(2):
        email = unique_email()
        register(client, email)
        tokens.append(login(client, email).get_json()["data"]["access_token"])
    target = unique_email("contested")
    barrier = threading.Barrier(2)
    statuses: list[int] = []

    def attempt(token: str) -> None:
        barrier.wait()
        response = app.test_client().patch(
            "/api/v1/users/me", json={"email": target}, headers=bearer(token)
        )
        statuses.append(response.status_code)

    threads = [threading.Thread(target=attempt, args=(token,)) for token in tokens]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert sorted(statuses) == [200, 409]


def test_patch_me_refuses_unknown_and_invalid_fields(client, registered_user):
    headers = bearer(registered_user["access_token"])
    for payload in ({"role": "admin"}, {"email": "not-an-email"}, {"is_active": False}):
        assert_error_envelope(
            client.patch("/api/v1/users/me", json=payload, headers=headers), 422, "validation_error"
        )
    assert_error_envelope(client.patch("/api/v1/users/me", json={"name": "x"}), 401, "unauthorized")


def change_password(client, access_token: str, current: str, new: str):
    return client.post(
        "/api/v1/users/me/password",
        json={"current_password": current, "new_password": new},
        headers=bearer(access_token),
    )


def test_changing_the_password_rejects_every_token_issued_before(client, registered_user):
    other_session = login(client, registered_user["email"]).get_json()["data"]
    response = change_password(
        client, registered_user["access_token"], STRONG_PASSWORD, NEW_PASSWORD
    )
    assert response.status_code == 204
    for session in (registered_user, other_session):
        me = client.get("/api/v1/users/me", headers=bearer(session["access_token"]))
        assert_error_envelope(me, 401, "unauthorized")
        refreshed = client.post(
            "/api/v1/auth/refresh", json={"refresh_token": session["refresh_token"]}
        )
        assert_error_envelope(refreshed, 401, "unauthorized")
    fresh = login(client, registered_user["email"], NEW_PASSWORD).get_json()["data"]
    assert client.get("/api/v1/users/me", headers=bearer(fresh["access_token"])).status_code == 200


def test_changing_the_password_needs_the_current_one_and_the_policy(client, registered_user):
    token = registered_user["access_token"]
    body = assert_error_envelope(
        change_password(client, token, "not my password", NEW_PASSWORD), 401, "unauthorized"
    )
    assert body["message"] == "The password is incorrect."
    body = assert_error_envelope(
        change_password(client, token, STRONG_PASSWORD, "password123"), 422, "validation_error"
    )
    assert "new_password" in body["errors"]
    # Nothing changed: the token still works.
    assert client.get("/api/v1/users/me", headers=bearer(token)).status_code == 200


def test_a_password_change_is_announced_by_email(smtp_client, mailbox):
    email = unique_email()
    register(smtp_client, email)
    token = login(smtp_client, email).get_json()["data"]["access_token"]
    assert change_password(smtp_client, token, STRONG_PASSWORD, NEW_PASSWORD).status_code == 204
    assert mailbox.wait_for(email, count=2)["Subject"] == "Your Steadfast password was changed"


def test_delete_me_needs_the_password_then_removes_the_account(client, registered_user):
    headers = bearer(registered_user["access_token"])
    wrong = client.delete("/api/v1/users/me", json={"password": "not my password"}, headers=headers)
    assert_error_envelope(wrong, 401, "unauthorized")
    assert_error_envelope(
        client.delete("/api/v1/users/me", headers=headers), 422, "validation_error"
    )
    response = client.delete(
        "/api/v1/users/me", json={"password": STRONG_PASSWORD}, headers=headers
    )
    assert response.status_code == 204
    assert_error_envelope(client.get("/api/v1/users/me", headers=headers), 401, "unauthorized")
    refreshed = client.post(
        "/api/v1/auth/refresh", json={"refresh_token": registered_user["refresh_token"]}
    )
    assert_error_envelope(refreshed, 401, "unauthorized")
    assert_error_envelope(login(client, registered_user["email"]), 401, "unauthorized")
    # The address is free again (the row is gone, not hidden).
    assert register(client, registered_user["email"]).status_code == 201
