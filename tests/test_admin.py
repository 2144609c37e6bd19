"""Admin endpoints: GET /users (pages, filters, sort), GET/PATCH/DELETE /users/{id}."""

from __future__ import annotations

import threading
import uuid
from typing import Any

import pytest

from app.repositories import users as users_repository
from app.services import users as users_service
from tests.conftest import (
    STRONG_PASSWORD,
    assert_error_envelope,
    bearer,
    login,
    register,
    unique_email,
)


def make_admin(app, client, email: str | None = None) -> dict[str, Any]:
    email = email or unique_email("admin")
    with app.app_context():
        user = users_service.create_admin(email, STRONG_PASSWORD, "Admin")
        user_id = str(user.id)
    tokens = login(client, email).get_json()["data"]
    return {"id": user_id, "email": email, "headers": bearer(tokens["access_token"])}


@pytest.fixture
def admin(app, client) -> dict[str, Any]:
    return make_admin(app, client)


def list_users(client, admin, **query):
    return client.get("/api/v1/users", query_string=query, headers=admin["headers"])


def test_non_admins_get_403_and_anonymous_401(client, registered_user):
    user_headers = bearer(registered_user["access_token"])
    target = f"/api/v1/users/{registered_user['id']}"
    for method, url in (
        ("get", "/api/v1/users"),
        ("get", target),
        ("patch", target),
        ("delete", target),
    ):
        kwargs = {"json": {"name": "x"}} if method == "patch" else {}
        response = getattr(client, method)(url, headers=user_headers, **kwargs)
        assert_error_envelope(response, 403, "forbidden")
        assert_error_envelope(getattr(client, method)(url, **kwargs), 401, "unauthorized")


def test_the_list_is_paginated_with_meta(client, admin):
    for index in range(5):
        register(client, unique_email(f"page{index}"))
    response = list_users(client, admin, page=2, per_page=2, sort="created_at")
    assert response.status_code == 200
    body = response.get_json()
    assert body["success"] is True
    assert body["meta"] == {"page": 2, "per_page": 2, "total": 6, "pages": 3}
    assert len(body["data"]) == 2
    assert "password_hash" not in response.get_data(as_text=True)
    everyone = list_users(client, admin, per_page=100, sort="created_at").get_json()["data"]
    assert [u["id"] for u in everyone[2:4]] == [u["id"] for u in body["data"]]
    beyond = list_users(client, admin, page=9, per_page=2).get_json()
    assert beyond["data"] == [] and beyond["meta"]["total"] == 6


@pytest.mark.parametrize(
    "query",
    [
        {"per_page": 101},
        {"per_page": 0},
        {"page": 0},
        {"page": -1},
        {"page": "two"},
        {"sort": "password_hash"},
        {"role": "root"},
        {"is_active": "maybe"},
        {"colour": "blue"},
        {"q": "x" * 101},
    ],
)
def test_bad_list_parameters_get_422(client, admin, query):
    assert_error_envelope(list_users(client, admin, **query), 422, "validation_error")


def test_a_repeated_query_parameter_gets_400(client, admin):
    response = client.get("/api/v1/users?page=1&page=2", headers=admin["headers"])
    assert_error_envelope(response, 400, "bad_request")


def test_sort_by_email_both_ways(client, admin):
    for prefix in ("bravo", "alpha", "charlie"):
        register(client, unique_email(prefix))
    ascending = [u["email"] for u in list_users(client, admin, sort="email").get_json()["data"]]
    descending = [u["email"] for u in list_users(client, admin, sort="-email").get_json()["data"]]
    assert ascending == sorted(ascending) and descending == ascending[::-1]


def test_q_searches_email_and_name_with_wildcards_taken_literally(client, admin):
    register(client, "percent_100%@example.com", name="Mister Underscore")
    register(client, "percentx100y@example.com", name="Plain")
    register(client, unique_email("other"), name="Someone Else")

    def emails(**query) -> list[str]:
        return sorted(u["email"] for u in list_users(client, admin, **query).get_json()["data"])

    assert emails(q="_100%") == ["percent_100%@example.com"]
    assert emails(q="%") == ["percent_100%@example.com"]
    assert emails(q="underSCORE") == ["percent_100%@example.com"]
    assert emails(q="percent") == ["percent_100%@example.com", "percentx100y@example.com"]
    assert emails(q="\\") == []


def test_role_and_is_active_filters(client, admin, registered_user):
    client.patch(
        f"/api/v1/users/{registered_user['id']}",
        json={"is_active": False},
        headers=admin["headers"],
    )
    admins = list_users(client, admin, role="admin").get_json()
    assert [u["id"] for u in admins["data"]] == [admin["id"]]
    inactive = list_users(client, admin, is_active="false").get_json()
    assert [u["id"] for u in inactive["data"]] == [registered_user["id"]]
    assert inactive["meta"]["total"] == 1


def test_get_one_user_and_404s(client, admin, registered_user):
    response = client.get(f"/api/v1/users/{registered_user['id']}", headers=admin["headers"])
    assert (
        response.status_code == 200 and response.get_json()["data"]["id"] == registered_user["id"]
    )
    for missing in (str(uuid.uuid4()), "not-a-uuid"):
        response = client.get(f"/api/v1/users/{missing}", headers=admin["headers"])
        assert_error_envelope(response, 404, "not_found")


def test_patch_changes_name_role_and_status(client, admin, registered_user):
    url = f"/api/v1/users/{registered_user['id']}"
    response = client.patch(
        url, json={"name": "Renamed", "role": "admin", "is_active": False}, headers=admin["headers"]
    )
    assert response.status_code == 200
    data = response.get_json()["data"]
    assert (data["name"], data["role"], data["is_active"]) == ("Renamed", "admin", False)
    # A disabled account's tokens stop working at once.
    me = client.get("/api/v1/users/me", headers=bearer(registered_user["access_token"]))
    assert_error_envelope(me, 403, "forbidden")


@pytest.mark.parametrize(
    "payload",
    [
        {"role": "root"},
        {"is_active": "no"},
        {"is_active": 0},
        {"email": "x@example.com"},
        {"password": "x"},
    ],
)
def test_patch_refuses_bad_and_unknown_fields(client, admin, registered_user, payload):
    response = client.patch(
        f"/api/v1/users/{registered_user['id']}", json=payload, headers=admin["headers"]
    )
    assert_error_envelope(response, 422, "validation_error")


def test_delete_removes_the_user(client, admin, registered_user):
    url = f"/api/v1/users/{registered_user['id']}"
    assert client.delete(url, headers=admin["headers"]).status_code == 204
    assert_error_envelope(client.get(url, headers=admin["headers"]), 404, "not_found")
    assert_error_envelope(client.delete(url, headers=admin["headers"]), 404, "not_found")
    me = client.get("/api/v1/users/me", headers=bearer(registered_user["access_token"]))
    assert_error_envelope(me, 401, "unauthorized")


def test_the_last_active_admin_can_be_neither_demoted_disabled_nor_deleted(client, admin):
    url = f"/api/v1/users/{admin['id']}"
    for payload in ({"role": "user"}, {"is_active": False}):
        body = assert_error_envelope(
            client.patch(url, json=payload, headers=admin["headers"]), 409, "conflict"
        )
        assert "last active admin" in body["message"]
    assert_error_envelope(client.delete(url, headers=admin["headers"]), 409, "conflict")
    own = client.delete(
        "/api/v1/users/me", json={"password": STRONG_PASSWORD}, headers=admin["headers"]
    )
    assert_error_envelope(own, 409, "conflict")
    # Renaming the last admin is fine, and so is demoting one once another exists.
    assert (
        client.patch(url, json={"name": "Still Admin"}, headers=admin["headers"]).status_code == 200
    )
    assert (
        client.patch(
            url, json={"role": "admin", "is_active": True}, headers=admin["headers"]
        ).status_code
        == 200
    )


def test_an_admin_may_step_down_when_another_active_admin_remains(app, client, admin):
    second = make_admin(app, client)
    response = client.patch(
        f"/api/v1/users/{admin['id']}", json={"role": "user"}, headers=second["headers"]
    )
    assert response.status_code == 200
    # A disabled admin does not count as the remaining one.
    third = make_admin(app, client)
    client.patch(
        f"/api/v1/users/{third['id']}", json={"is_active": False}, headers=second["headers"]
    )
    response = client.delete(f"/api/v1/users/{second['id']}", headers=second["headers"])
    assert_error_envelope(response, 409, "conflict")


def test_two_admins_demoting_each_other_at_once_leave_one_admin(app, client):
    first, second = make_admin(app, client), make_admin(app, client)
    barrier = threading.Barrier(2)
    statuses: list[int] = []

    def demote(actor: dict, target: dict) -> None:
        barrier.wait()
        response = app.test_client().patch(
            f"/api/v1/users/{target['id']}", json={"role": "user"}, headers=actor["headers"]
        )
        statuses.append(response.status_code)

    threads = [
        threading.Thread(target=demote, args=(first, second)),
        threading.Thread(target=demote, args=(second, first)),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    # One wins; the other is refused: 409 if it raced the lock, 403 if it was already demoted.
    assert sorted(statuses)[0] == 200 and sorted(statuses)[1] in (403, 409)
    with app.app_context():
        remaining = users_repository.lock_active_admin_ids()
        users_repository.rollback()
    assert len(remaining) == 1
