"""Password reset and its confirmation: no enumeration, single use, 1 h, sessions revoked."""

from __future__ import annotations

import json
import statistics
import threading
import time
from datetime import timedelta

from sqlalchemy import select

from app.extensions import db
from app.models import OneTimeToken
from app.models.types import utc_now
from tests.conftest import (
    STRONG_PASSWORD,
    assert_error_envelope,
    bearer,
    login,
    register,
    unique_email,
)
from tests.mail import text_of, token_in

NEW_PASSWORD = "a brand new passphrase 42"


def forgot(client, email: str):
    return client.post("/api/v1/auth/password-reset", json={"email": email})


def confirm(client, token: str, new_password: str = NEW_PASSWORD):
    return client.post(
        "/api/v1/auth/password-reset/confirm", json={"token": token, "new_password": new_password}
    )


def registered(client, mailbox) -> str:
    email = unique_email()
    assert register(client, email).status_code == 201
    mailbox.wait_for(email)  # the welcome email
    return email


def reset_token(client, mailbox, email: str, count: int = 2) -> str:
    assert forgot(client, email).status_code == 202
    return token_in(mailbox.wait_for(email, count=count))


def test_forgot_reset_login_with_the_new_password_end_to_end(smtp_client, mailbox, log_records):
    email = registered(smtp_client, mailbox)
    old_session = login(smtp_client, email).get_json()["data"]
    response = forgot(smtp_client, email.upper())
    assert response.status_code == 202
    assert "If an account exists" in response.get_json()["data"]["message"]
    message = mailbox.wait_for(email, count=2)
    assert message["Subject"] == "Reset your Steadfast password"
    assert "expires in 1 hour" in text_of(message)
    token = token_in(message)
    assert confirm(smtp_client, token).status_code == 204
    assert login(smtp_client, email, NEW_PASSWORD).status_code == 200
    assert_error_envelope(login(smtp_client, email, STRONG_PASSWORD), 401, "unauthorized")
    # Every session from before the reset is dead, refresh tokens included.
    me = smtp_client.get("/api/v1/users/me", headers=bearer(old_session["access_token"]))
    assert_error_envelope(me, 401, "unauthorized")
    refreshed = smtp_client.post(
        "/api/v1/auth/refresh", json={"refresh_token": old_session["refresh_token"]}
    )
    assert_error_envelope(refreshed, 401, "unauthorized")
    # And the owner is told.
    changed = mailbox.wait_for(email, count=3)
    assert changed["Subject"] == "Your Steadfast password was changed"
    # The token went to the mailbox and nowhere else: not one log line carries it.
    assert log_records and token not in json.dumps(log_records)


def test_an_unknown_email_gets_the_same_202_and_nothing_is_sent(smtp_client, mailbox):
    known = registered(smtp_client, mailbox)
    unknown = unique_email("nobody")
    answers = [forgot(smtp_client, address) for address in (known, unknown)]
    assert {r.status_code for r in answers} == {202}
    assert len({r.get_data(as_text=True) for r in answers}) == 1
    mailbox.wait_for(known, count=2)
    assert mailbox.to(unknown) == []


def test_reset_takes_similar_time_for_known_and_unknown_emails(make_app, redis_url):
    # With Redis (as in staging/production) the request only enqueues a job: the same work.
    client = make_app(REDIS_URL=redis_url).test_client()
    known = unique_email()
    register(client, known)

    def seconds(email: str) -> float:
        started = time.perf_counter()
        assert forgot(client, email).status_code == 202
        return time.perf_counter() - started

    # Paired and alternated, so a slow moment of a shared host weighs on both sides alike:
    # the median of the pairs' ratios, not a ratio of two medians taken apart.
    seconds(known)  # warm-up
    unknown = unique_email()
    ratios = []
    for pair in range(25):
        if pair % 2:
            unknown_s, known_s = seconds(unknown), seconds(known)
        else:
            known_s, unknown_s = seconds(known), seconds(unknown)
        ratios.append(unknown_s / known_s)
    ratio = statistics.median(ratios)
    assert 0.5 < ratio < 2.0


def test_a_reset_token_works_once(smtp_client, mailbox):
    email = registered(smtp_client, mailbox)
    token = reset_token(smtp_client, mailbox, email)
    assert confirm(smtp_client, token).status_code == 204
    assert_error_envelope(
        confirm(smtp_client, token, "yet another passphrase 7"), 401, "unauthorized"
    )


def test_a_reset_token_expires_after_an_hour(smtp_app, smtp_client, mailbox):
    email = registered(smtp_client, mailbox)
    token = reset_token(smtp_client, mailbox, email)
    with smtp_app.app_context():
        stored = db.session.execute(
            select(OneTimeToken).where(OneTimeToken.purpose == "password_reset")
        ).scalar_one()
        lifetime = stored.expires_at - stored.created_at
        assert timedelta(minutes=59) < lifetime <= timedelta(hours=1)
        stored.expires_at = utc_now() - timedelta(seconds=1)
        db.session.commit()
    assert_error_envelope(confirm(smtp_client, token), 401, "unauthorized")


def test_a_newer_reset_email_supersedes_the_older_one(smtp_client, mailbox):
    email = registered(smtp_client, mailbox)
    first = reset_token(smtp_client, mailbox, email, count=2)
    second = reset_token(smtp_client, mailbox, email, count=3)
    assert_error_envelope(confirm(smtp_client, first), 401, "unauthorized")
    assert confirm(smtp_client, second).status_code == 204


def test_wrong_type_and_tampered_reset_tokens_are_refused(smtp_client, mailbox, registered_user):
    email = unique_email()
    register(smtp_client, email)
    verification_token = token_in(mailbox.wait_for(email))
    assert_error_envelope(confirm(smtp_client, verification_token), 401, "unauthorized")
    token = reset_token(smtp_client, mailbox, email)
    assert_error_envelope(confirm(smtp_client, token[::-1]), 401, "unauthorized")
    assert_error_envelope(
        confirm(smtp_client, registered_user["refresh_token"][:500]), 401, "unauthorized"
    )
    assert confirm(smtp_client, token).status_code == 204


def test_the_new_password_must_meet_the_policy_and_the_token_survives_a_refusal(
    smtp_client, mailbox
):
    email = registered(smtp_client, mailbox)
    token = reset_token(smtp_client, mailbox, email)
    for weak in ("short", "password123", email):
        body = assert_error_envelope(confirm(smtp_client, token, weak), 422, "validation_error")
        assert "new_password" in body["errors"]
    assert confirm(smtp_client, token).status_code == 204


def test_reset_endpoints_validate_their_bodies(client):
    assert_error_envelope(forgot(client, "not-an-email"), 422, "validation_error")
    assert_error_envelope(
        client.post("/api/v1/auth/password-reset", json={}), 422, "validation_error"
    )
    body = assert_error_envelope(
        client.post("/api/v1/auth/password-reset/confirm", json={"token": "x"}),
        422,
        "validation_error",
    )
    assert set(body["errors"]) == {"new_password"}


def test_a_disabled_account_gets_no_reset_email(smtp_app, smtp_client, mailbox):
    from app.models import User

    email = registered(smtp_client, mailbox)
    with smtp_app.app_context():
        user = db.session.execute(select(User).where(User.email == email)).scalar_one()
        user.is_active = False
        db.session.commit()
    assert forgot(smtp_client, email).status_code == 202
    assert len(mailbox.to(email)) == 1


def test_two_concurrent_confirms_with_one_token_give_one_204_and_one_401(
    smtp_app, smtp_client, mailbox
):
    email = registered(smtp_client, mailbox)
    token = reset_token(smtp_client, mailbox, email)
    barrier = threading.Barrier(2)
    statuses: list[int] = []

    def attempt(password: str) -> None:
        client = smtp_app.test_client()
        barrier.wait()
        statuses.append(confirm(client, token, password).status_code)

    threads = [
        threading.Thread(target=attempt, args=(password,))
        for password in ("first new passphrase 1", "second new passphrase 2")
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert sorted(statuses) == [204, 401]
