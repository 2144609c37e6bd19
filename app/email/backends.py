"""Email backends: console (development) and SMTP (SMTP_URL, with timeouts and STARTTLS)."""

from __future__ import annotations

import smtplib
import ssl
from dataclasses import dataclass
from email.message import EmailMessage as MimeMessage
from email.utils import make_msgid
from typing import Protocol
from urllib.parse import parse_qs, unquote, urlsplit

from loguru import logger

from app.config import Settings
from app.email.messages import EmailMessage

SMTP_TIMEOUT_S = 10.0
_TRUE = ("1", "true", "yes", "on")


class EmailBackend(Protocol):
    def send(self, message: EmailMessage, sender: str) -> None: ...


class ConsoleBackend:
    """Development backend: logs the message, but never a body that carries a token.

    Token-bearing bodies are withheld even though the log redaction would likely catch
    them: a log line is the wrong place to rely on a regex. To read such mail locally, run
    `python -m aiosmtpd -n -l 127.0.0.1:1025` and set EMAIL_BACKEND=smtp,
    SMTP_URL=smtp://127.0.0.1:1025.
    """

    def send(self, message: EmailMessage, sender: str) -> None:
        body = "[withheld: it carries a one-time token]" if message.carries_secret else message.text
        logger.bind(
            email_to=message.to, email_subject=message.subject, email_template=message.template
        ).info("email (console backend) to {}: {}\n{}", message.to, message.subject, body)


@dataclass(frozen=True)
class SmtpSettings:
    host: str
    port: int
    implicit_tls: bool
    starttls: bool
    username: str | None
    password: str | None
    timeout_s: float

    @classmethod
    def from_url(cls, url: str) -> SmtpSettings:
        """`smtp://user:pass@host:587?starttls=true&timeout=5` or `smtps://host:465`."""
        parts = urlsplit(url)
        query = {key: values[-1] for key, values in parse_qs(parts.query).items()}
        implicit_tls = parts.scheme == "smtps"
        starttls = query.get("starttls", "").lower() in _TRUE
        default_port = 465 if implicit_tls else (587 if starttls else 25)
        return cls(
            host=parts.hostname or "localhost",
            port=parts.port or default_port,
            implicit_tls=implicit_tls,
            starttls=starttls,
            username=unquote(parts.username) if parts.username else None,
            password=unquote(parts.password) if parts.password else None,
            timeout_s=float(query.get("timeout", SMTP_TIMEOUT_S)),
        )


def to_mime(message: EmailMessage, sender: str) -> MimeMessage:
    mime = MimeMessage()
    mime["From"] = sender
    mime["To"] = message.to
    mime["Subject"] = message.subject
    mime["Message-ID"] = make_msgid(domain=sender.rpartition("@")[2].strip("> ") or None)
    mime.set_content(message.text)
    if message.html:
        mime.add_alternative(message.html, subtype="html")
    return mime


class SmtpBackend:
    """One connection per message: simple, and nothing stale survives between sends."""

    def __init__(self, config: SmtpSettings) -> None:
        self.config = config

    def send(self, message: EmailMessage, sender: str) -> None:
        config = self.config
        # Certificates and host names are verified: a mail relay is a network peer like any.
        context = ssl.create_default_context()
        if config.implicit_tls:
            client: smtplib.SMTP = smtplib.SMTP_SSL(
                config.host, config.port, timeout=config.timeout_s, context=context
            )
        else:
            client = smtplib.SMTP(config.host, config.port, timeout=config.timeout_s)
        with client:
            if config.starttls:
                client.starttls(context=context)
            if config.username:
                client.login(config.username, config.password or "")
            client.send_message(to_mime(message, sender))


def backend_for(settings: Settings) -> EmailBackend:
    if settings.email_backend == "smtp" and settings.smtp_url:
        return SmtpBackend(SmtpSettings.from_url(settings.smtp_url))
    return ConsoleBackend()
