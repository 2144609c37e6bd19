"""SMTP with STARTTLS (SMTP_URL ...?starttls=true): the server's certificate is verified."""

from __future__ import annotations

import shutil
import ssl
import subprocess

import pytest
from aiosmtpd.controller import Controller

from tests.conftest import register, unique_email
from tests.mail import Mailbox, token_in
from tests.processes import free_port

pytestmark = pytest.mark.skipif(shutil.which("openssl") is None, reason="needs openssl")


@pytest.fixture
def certificate(tmp_path) -> tuple[str, str]:
    key, cert = tmp_path / "key.pem", tmp_path / "cert.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1"]
        + ["-keyout", str(key), "-out", str(cert), "-subj", "/CN=localhost"]
        + ["-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"],
        check=True,
        capture_output=True,
        timeout=60,
    )
    return str(cert), str(key)


@pytest.fixture
def starttls_server(certificate):
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(*certificate)
    mailbox, port = Mailbox(), free_port()
    controller = Controller(
        mailbox, hostname="127.0.0.1", port=port, tls_context=context, require_starttls=True
    )
    controller.start()
    try:
        yield mailbox, port
    finally:
        controller.stop()


def test_starttls_delivers_when_the_certificate_is_trusted(
    make_app, starttls_server, certificate, monkeypatch
):
    mailbox, port = starttls_server
    # Trust the test's own CA the way an operator would: through the system trust settings.
    monkeypatch.setenv("SSL_CERT_FILE", certificate[0])
    client = make_app(
        EMAIL_BACKEND="smtp", SMTP_URL=f"smtp://127.0.0.1:{port}?starttls=true&timeout=5"
    ).test_client()
    email = unique_email()
    assert register(client, email).status_code == 201
    assert token_in(mailbox.wait_for(email))


def test_starttls_refuses_an_untrusted_certificate_without_failing_the_request(
    make_app, starttls_server, log_records
):
    mailbox, port = starttls_server
    client = make_app(
        EMAIL_BACKEND="smtp", SMTP_URL=f"smtp://127.0.0.1:{port}?starttls=true&timeout=5"
    ).test_client()
    assert register(client, unique_email()).status_code == 201
    assert mailbox.messages == []
    failures = [r for r in log_records if r["message"].startswith("email delivery failed")]
    assert failures and "SSLCertVerificationError" in failures[0]["stack"]


def test_without_starttls_a_server_that_requires_it_refuses_the_mail(
    make_app, starttls_server, log_records
):
    mailbox, port = starttls_server
    client = make_app(EMAIL_BACKEND="smtp", SMTP_URL=f"smtp://127.0.0.1:{port}").test_client()
    assert register(client, unique_email()).status_code == 201
    assert mailbox.messages == []
    assert any(r["message"].startswith("email delivery failed") for r in log_records)
