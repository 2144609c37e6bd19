"""Email delivery: templates, console and SMTP backends; a failure never fails a request."""

from __future__ import annotations

import pytest

from app.email import backends
from app.email.backends import SmtpSettings
from app.email.messages import render
from tests.conftest import register, unique_email
from tests.mail import html_of, text_of, token_in


def test_registration_sends_the_welcome_email_through_the_console_without_its_token(
    client, log_records
):
    email = unique_email()
    assert register(client, email).status_code == 201
    sent = [r for r in log_records if r.get("email_to") == email]
    assert sent and sent[0]["email_template"] == "welcome"
    console = next(r for r in sent if "console backend" in r["message"])
    assert "withheld" in console["message"]
    assert "token" not in console["message"].split("withheld")[0].lower()


def test_the_console_prints_a_body_that_carries_no_secret(app, log_records):
    from app.email.delivery import deliver

    with app.app_context():
        deliver(render("password_changed", "a@example.com", name="Ann", changed_at="now"))
    console = next(r for r in log_records if "console backend" in r["message"])
    assert "password of your Steadfast account was changed" in console["message"]


def test_welcome_email_arrives_over_smtp_as_text_and_html(smtp_client, mailbox):
    email = unique_email()
    assert register(smtp_client, email, name="Ann <b>").status_code == 201
    message = mailbox.wait_for(email)
    assert message["Subject"].startswith("Welcome to Steadfast")
    assert message["From"] == "Steadfast <no-reply@localhost>"
    assert message["Message-ID"]
    assert "Hello Ann <b>," in text_of(message)
    # The name is user input: escaped in the HTML part.
    assert "Ann &lt;b&gt;" in html_of(message)
    token = token_in(message)
    assert token in html_of(message)
    assert len(token) >= 40


def test_links_point_at_the_frontend_when_configured(make_app, smtp_server):
    client = make_app(
        EMAIL_BACKEND="smtp", SMTP_URL=smtp_server.url, FRONTEND_URL="https://app.example/"
    ).test_client()
    email = unique_email()
    register(client, email)
    text = text_of(smtp_server.mailbox.wait_for(email))
    assert "https://app.example/verify-email?token=" in text


def test_a_refused_smtp_send_is_logged_and_the_registration_still_succeeds(
    smtp_client, mailbox, log_records
):
    mailbox.refuse_next = 1
    email = unique_email()
    assert register(smtp_client, email).status_code == 201
    failures = [r for r in log_records if r["message"].startswith("email delivery failed")]
    assert len(failures) == 1
    assert failures[0]["email_to"] == email and "SMTPDataError" in failures[0]["stack"]
    assert any("email job failed inline" in r["message"] for r in log_records)


def test_an_unreachable_smtp_server_never_fails_the_registration(make_app, log_records):
    from tests.processes import free_port

    client = make_app(
        EMAIL_BACKEND="smtp", SMTP_URL=f"smtp://127.0.0.1:{free_port()}?timeout=2"
    ).test_client()
    assert register(client, unique_email()).status_code == 201
    assert any(r["message"].startswith("email delivery failed") for r in log_records)


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("smtp://mail.example", ("mail.example", 25, False, False, None, None, 10.0)),
        (
            "smtp://user%40x:p%3Ass@mail.example?starttls=true&timeout=3",
            ("mail.example", 587, False, True, "user@x", "p:ss", 3.0),
        ),
        ("smtps://mail.example", ("mail.example", 465, True, False, None, None, 10.0)),
        ("smtp://127.0.0.1:1025", ("127.0.0.1", 1025, False, False, None, None, 10.0)),
    ],
)
def test_smtp_url_forms(url, expected):
    config = SmtpSettings.from_url(url)
    assert (
        config.host,
        config.port,
        config.implicit_tls,
        config.starttls,
        config.username,
        config.password,
        config.timeout_s,
    ) == expected


def test_smtp_backend_is_chosen_only_when_asked(app):
    assert isinstance(
        backends.backend_for(app.extensions["steadfast"].settings), backends.ConsoleBackend
    )
