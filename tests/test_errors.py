"""Every failure is the SPEC section 2 envelope: JSON, request id, no internals."""

from __future__ import annotations

import json

import pytest

from app.errors import ConflictError
from app.errors.handlers import INTERNAL_ERROR_MESSAGE
from tests.conftest import STRONG_PASSWORD, assert_error_envelope, unique_email


def test_unknown_route_is_a_json_404(client):
    assert_error_envelope(client.get("/no/such/route"), 404, "not_found")


def test_wrong_method_is_a_json_405_with_allow(client):
    response = client.put("/api/v1/auth/login")
    assert_error_envelope(response, 405, "method_not_allowed")
    assert "POST" in response.headers["Allow"]


@pytest.mark.parametrize("path", ["/api/v1/users/me", "/api/v1/auth/login", "/health/ready"])
def test_options_is_a_204_with_allow_and_no_body_to_type(client, path):
    # Flask's own answer is a 200 with an empty body typed text/html: not JSON (SPEC 2).
    response = client.options(path)
    assert response.status_code == 204
    assert response.data == b""
    assert "Content-Type" not in response.headers
    assert "GET" in response.headers["Allow"] or "POST" in response.headers["Allow"]
    assert response.headers["X-Request-ID"]


def test_options_on_an_unknown_route_is_a_json_404(client):
    assert_error_envelope(client.options("/no/such/route"), 404, "not_found")


def test_malformed_json_is_a_400(client):
    response = client.post("/api/v1/users", data=b'{"email": ', content_type="application/json")
    assert_error_envelope(response, 400, "bad_request")


def test_invalid_utf8_is_a_400(client):
    response = client.post(
        "/api/v1/users", data=b'{"email": "\xff\xfe"}', content_type="application/json"
    )
    assert_error_envelope(response, 400, "bad_request")


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded", None])
def test_a_body_that_is_not_json_is_a_415(client, content_type):
    response = client.post(
        "/api/v1/users",
        data=b"email=a@example.com",
        headers={"Content-Type": content_type} if content_type else {},
    )
    assert_error_envelope(response, 415, "unsupported_media_type")


def test_a_body_over_max_content_length_is_a_413(make_app):
    client = make_app(MAX_CONTENT_LENGTH="2k").test_client()
    payload = {"email": unique_email(), "password": STRONG_PASSWORD, "name": "x" * 4096}
    assert_error_envelope(client.post("/api/v1/users", json=payload), 413, "payload_too_large")


def test_a_repeated_query_parameter_is_a_400(client):
    body = assert_error_envelope(client.get("/api/v1/users/me?a=1&a=2"), 400, "bad_request")
    assert body["errors"] == {"a": ["Given more than once."]}


def test_a_json_array_body_is_a_422(client):
    response = client.post("/api/v1/users", json=[1, 2, 3])
    assert_error_envelope(response, 422, "validation_error")


def _app_with_route(make_app, view):
    app = make_app()
    app.add_url_rule("/boom", "boom", view)
    return app


def test_a_programming_error_is_the_generic_500_and_is_logged_with_its_stack(make_app, log_records):
    def broken_view():
        raise KeyError("SELECT secret_column FROM internal_table")

    client = _app_with_route(make_app, broken_view).test_client()
    response = client.get("/boom")
    body = assert_error_envelope(response, 500, "internal_error")
    assert body["message"] == INTERNAL_ERROR_MESSAGE
    text = response.get_data(as_text=True)
    for leak in ("KeyError", "SELECT", "Traceback", "internal_table"):
        assert leak not in text
    errors = [r for r in log_records if r["level"] == "ERROR"]
    assert len(errors) == 1
    assert "KeyError" in errors[0]["stack"] and "broken_view" in errors[0]["stack"]
    assert errors[0]["path"] == "/boom" and errors[0]["method"] == "GET"
    assert errors[0]["request_id"] == response.headers["X-Request-ID"]


def test_app_errors_raised_anywhere_keep_their_status_and_code(make_app):
    def conflicting_view():
        raise ConflictError("Already there.")

    response = _app_with_route(make_app, conflicting_view).test_client().get("/boom")
    body = assert_error_envelope(response, 409, "conflict")
    assert body["message"] == "Already there."


def test_a_sane_request_id_is_echoed(client):
    response = client.get("/no/such/route", headers={"X-Request-ID": "abc-123.XYZ:7"})
    assert response.headers["X-Request-ID"] == "abc-123.XYZ:7"
    assert response.get_json()["request_id"] == "abc-123.XYZ:7"


@pytest.mark.parametrize("bad_id", ["x" * 129, "has space", "semi;colon", "<script>", ""])
def test_an_insane_request_id_is_replaced(client, bad_id):
    response = client.get("/no/such/route", headers={"X-Request-ID": bad_id})
    assert response.headers["X-Request-ID"] != bad_id
    assert len(response.headers["X-Request-ID"]) == 32


def test_success_responses_carry_a_request_id_too(client):
    response = client.post(
        "/api/v1/users", json={"email": unique_email(), "password": STRONG_PASSWORD}
    )
    assert response.status_code == 201
    assert len(response.headers["X-Request-ID"]) == 32
    assert json.loads(response.get_data())["success"] is True
