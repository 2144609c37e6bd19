"""POST /api/v1/users and GET /api/v1/users/me through the Flask test client."""

from __future__ import annotations

import threading
from datetime import datetime

from tests.conftest import (
    STRONG_PASSWORD,
    assert_error_envelope,
    bearer,
    register,
    unique_email,
)

USER_FIELDS = {
    "id",
    "email",
    "name",
    "role",
    "is_active",
    "email_verified",
    "created_at",
    "updated_at",
}


def test_register_returns_201_with_location_and_the_user(client):
    email = unique_email()
    response = register(client, f"  {email.upper()} ", name="Ann")
    assert response.status_code == 201
    body = response.get_json()
    assert body["success"] is True
    user = body["data"]
    assert set(user) == USER_FIELDS
    assert user["email"] == email and user["name"] == "Ann"
    assert (user["role"], user["is_active"], user["email_verified"]) == ("user", True, False)
    assert response.headers["Location"] == f"/api/v1/users/{user['id']}"
    assert datetime.fromisoformat(user["created_at"]).utcoffset().total_seconds() == 0
    assert "password" not in response.get_data(as_text=True)


def test_register_rejects_duplicate_email_in_any_case_or_whitespace(client):
    email = unique_email()
    assert register(client, email).status_code == 201
    for variant in (email, email.upper(), f"  {email} ", f"\t{email.title()}"):
        body = assert_error_envelope(register(client, variant), 409, "conflict")
        assert "already exists" in body["message"]


def test_eight_racing_registrations_give_one_201_and_seven_409(app):
    email = unique_email("race")
    barrier = threading.Barrier(8)
    statuses: list[int] = []

    def attempt() -> None:
        client = app.test_client()
        barrier.wait()
        statuses.append(register(client, email).status_code)

    threads = [threading.Thread(target=attempt) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert sorted(statuses) == [201] + [409] * 7


def test_register_reports_every_invalid_field(client):
    response = client.post(
        "/api/v1/users", json={"email": "not-an-email", "password": "short", "role": "admin"}
    )
    body = assert_error_envelope(response, 422, "validation_error")
    assert body["errors"]["email"] == ["Not a valid email address."]
    assert body["errors"]["role"] == ["Unknown field."]


def test_register_requires_email_and_password(client):
    body = assert_error_envelope(client.post("/api/v1/users", json={}), 422, "validation_error")
    assert set(body["errors"]) == {"email", "password"}


def test_register_refuses_weak_passwords_with_per_field_messages(client):
    email = unique_email()
    for password, fragment in (
        ("short", "at least 8"),
        ("password123", "too common"),
        (email, "not be your email"),
    ):
        body = assert_error_envelope(register(client, email, password), 422, "validation_error")
        assert any(fragment in message for message in body["errors"]["password"])


def test_register_refuses_wrong_types_and_control_characters(client):
    for payload in (
        {"email": ["a@example.com"], "password": STRONG_PASSWORD},
        {"email": unique_email(), "password": 12345678},
        {"email": unique_email(), "password": STRONG_PASSWORD, "name": "nul\x00byte"},
        {"email": unique_email(), "password": STRONG_PASSWORD, "name": "x" * 10_000},
        {"email": unique_email(), "password": STRONG_PASSWORD, "name": {"first": "A"}},
    ):
        assert_error_envelope(client.post("/api/v1/users", json=payload), 422, "validation_error")


def test_me_returns_the_authenticated_user(client, registered_user):
    response = client.get("/api/v1/users/me", headers=bearer(registered_user["access_token"]))
    assert response.status_code == 200
    assert response.get_json()["data"]["id"] == registered_user["id"]
    assert set(response.get_json()["data"]) == USER_FIELDS


def test_me_requires_a_bearer_token(client):
    body = assert_error_envelope(client.get("/api/v1/users/me"), 401, "unauthorized")
    assert body["message"] == "A bearer token is required."
    response = client.get("/api/v1/users/me", headers={"Authorization": "Basic dXNlcjpwYXNz"})
    assert_error_envelope(response, 401, "unauthorized")
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
