"""POST /api/v1/auth/verify-email, and PATCH /users/me email changes that need a new one."""

from __future__ import annotations

import hashlib
from datetime import timedelta

from sqlalchemy import select

from app.extensions import db
from app.models import OneTimeToken
from app.models.types import utc_now
from tests.conftest import assert_error_envelope, bearer, login, register, unique_email
from tests.mail import token_in


def verify(client, token: str):
    return client.post("/api/v1/auth/verify-email", json={"token": token})


def me(client, access_token: str) -> dict:
    return client.get("/api/v1/users/me", headers=bearer(access_token)).get_json()["data"]


def registered_with_token(client, mailbox) -> tuple[str, str]:
    email = unique_email()
    assert register(client, email).status_code == 201
    return email, token_in(mailbox.wait_for(email))


def test_register_then_follow_the_emailed_token_to_verify(smtp_client, mailbox):
    email, token = registered_with_token(smtp_client, mailbox)
    access_token = login(smtp_client, email).get_json()["data"]["access_token"]
    assert me(smtp_client, access_token)["email_verified"] is False
    response = verify(smtp_client, token)
    assert response.status_code == 204 and response.data == b""
    assert me(smtp_client, access_token)["email_verified"] is True


def test_a_verification_token_works_once(smtp_client, mailbox):
    _, token = registered_with_token(smtp_client, mailbox)
    assert verify(smtp_client, token).status_code == 204
    body = assert_error_envelope(verify(smtp_client, token), 401, "unauthorized")
    assert "already used" in body["message"]


def test_only_the_hash_of_the_token_is_stored(smtp_app, smtp_client, mailbox):
    _, token = registered_with_token(smtp_client, mailbox)
    with smtp_app.app_context():
        stored = db.session.execute(select(OneTimeToken)).scalars().all()
    assert len(stored) == 1
    assert stored[0].token_hash == hashlib.sha256(token.encode()).hexdigest()
    assert token not in repr(stored[0].__dict__)
    assert stored[0].purpose == "verify_email" and stored[0].used_at is None


def test_an_expired_verification_token_is_refused(smtp_app, smtp_client, mailbox):
    _, token = registered_with_token(smtp_client, mailbox)
    with smtp_app.app_context():
        stored = db.session.execute(select(OneTimeToken)).scalar_one()
        stored.expires_at = utc_now() - timedelta(seconds=1)
        db.session.commit()
    assert_error_envelope(verify(smtp_client, token), 401, "unauthorized")


def test_tampered_unknown_and_wrong_type_tokens_are_refused(smtp_client, mailbox, registered_user):
    _, token = registered_with_token(smtp_client, mailbox)
    tampered = token[:-2] + ("AA" if not token.endswith("AA") else "BB")
    for bad in (tampered, "x" * 43, registered_user["access_token"], "x" * 600):
        response = verify(smtp_client, bad)
        assert response.status_code in (401, 422), bad
    # A password-reset token is not a verification token.
    email, _ = registered_with_token(smtp_client, mailbox)
    smtp_client.post("/api/v1/auth/password-reset", json={"email": email})
    reset_token = token_in(mailbox.wait_for(email, count=2))
    assert_error_envelope(verify(smtp_client, reset_token), 401, "unauthorized")
    # ...and the real one still works after all that.
    assert verify(smtp_client, token).status_code == 204


def test_verify_email_validates_its_body(client):
    body = assert_error_envelope(
        client.post("/api/v1/auth/verify-email", json={}), 422, "validation_error"
    )
    assert body["errors"] == {"token": ["Missing data for required field."]}


def test_changing_the_email_clears_verification_and_sends_a_new_token(smtp_client, mailbox):
    email, token = registered_with_token(smtp_client, mailbox)
    verify(smtp_client, token)
    access_token = login(smtp_client, email).get_json()["data"]["access_token"]
    new_email = unique_email("moved")
    response = smtp_client.patch(
        "/api/v1/users/me", json={"email": new_email.upper()}, headers=bearer(access_token)
    )
    assert response.status_code == 200
    user = response.get_json()["data"]
    assert user["email"] == new_email and user["email_verified"] is False
    new_token = token_in(mailbox.wait_for(new_email))
    assert mailbox.wait_for(new_email)["Subject"] == "Confirm your new email address"
    assert verify(smtp_client, new_token).status_code == 204
    assert me(smtp_client, access_token)["email_verified"] is True


def test_a_token_for_the_old_address_cannot_verify_the_new_one(smtp_client, mailbox):
    email, old_token = registered_with_token(smtp_client, mailbox)
    access_token = login(smtp_client, email).get_json()["data"]["access_token"]
    smtp_client.patch(
        "/api/v1/users/me", json={"email": unique_email("new")}, headers=bearer(access_token)
    )
    assert_error_envelope(verify(smtp_client, old_token), 401, "unauthorized")
    assert me(smtp_client, access_token)["email_verified"] is False
