"""The welcome email: sent on registration, and its failure never fails the registration."""

from __future__ import annotations

from app.services import email as email_service
from tests.conftest import register, unique_email


def test_registration_sends_a_welcome_email_through_the_console_backend(client, log_records):
    email = unique_email()
    assert register(client, email).status_code == 201
    sent = [r for r in log_records if r.get("email_to") == email]
    assert sent and sent[0]["email_subject"] == "Welcome to Steadfast"


def test_a_failing_mail_backend_never_fails_the_registration(client, log_records, monkeypatch):
    class BrokenBackend:
        def send(self, message, sender):
            raise ConnectionRefusedError("mail server down")

    # The boundary we cannot break for real here is the mail server itself.
    monkeypatch.setattr(email_service, "backend_for", lambda name: BrokenBackend())
    email = unique_email()
    response = register(client, email)
    assert response.status_code == 201
    failures = [r for r in log_records if r["message"].startswith("email delivery failed")]
    assert len(failures) == 1
    assert failures[0]["email_to"] == email and "ConnectionRefusedError" in failures[0]["stack"]
