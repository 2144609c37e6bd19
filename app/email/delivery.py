"""The one place every email goes through, so each outcome is logged and counted once."""

from __future__ import annotations

from loguru import logger

from app.email.backends import backend_for
from app.email.messages import EmailMessage
from app.monitoring.metrics import record_email
from app.state import settings


class DeliveryError(Exception):
    """The backend could not send the message (already logged); the caller may retry."""


def deliver(message: EmailMessage) -> None:
    """Send `message` now through the configured backend; DeliveryError if it failed."""
    config = settings()
    context = {
        "email_to": message.to,
        "email_subject": message.subject,
        "email_template": message.template,
    }
    try:
        backend_for(config).send(message, config.email_from)
    except Exception as error:  # noqa: BLE001 - any backend failure is reported the same way
        logger.opt(exception=error).bind(**context).error(
            "email delivery failed: {}", type(error).__name__
        )
        record_email(sent=False)
        raise DeliveryError(type(error).__name__) from error
    record_email(sent=True)
    logger.bind(**context).info("email sent: {}", message.template)
