"""Outgoing email: messages built here, handed to a backend; a failure never fails the caller."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from loguru import logger

from app.monitoring.metrics import record_email
from app.state import settings


@dataclass(frozen=True)
class EmailMessage:
    to: str
    subject: str
    text: str
    html: str | None = None


class EmailBackend(Protocol):
    def send(self, message: EmailMessage, sender: str) -> None: ...


class ConsoleBackend:
    """Development backend: logs that a message was sent, without its body (it holds tokens)."""

    def send(self, message: EmailMessage, sender: str) -> None:
        logger.bind(email_to=message.to, email_subject=message.subject).info(
            "email (console backend): {} -> {}", message.subject, message.to
        )


def backend_for(name: str) -> EmailBackend:
    if name == "console":
        return ConsoleBackend()
    raise ValueError(f"unknown email backend {name!r}")


def deliver(message: EmailMessage) -> bool:
    """Send now; True on success. Failures are logged with the recipient, never raised."""
    config = settings()
    try:
        backend_for(config.email_backend).send(message, config.email_from)
    except Exception as error:  # noqa: BLE001 - any backend failure must not fail the request
        logger.opt(exception=error).bind(email_to=message.to, email_subject=message.subject).error(
            "email delivery failed: {}", type(error).__name__
        )
        record_email(sent=False)
        return False
    record_email(sent=True)
    return True


def send_welcome(to: str, name: str | None) -> bool:
    greeting = f"Hello {name}," if name else "Hello,"
    return deliver(
        EmailMessage(
            to=to,
            subject="Welcome to Steadfast",
            text=f"{greeting}\n\nYour account has been created.\n",
        )
    )
