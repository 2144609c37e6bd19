"""A queued job for the tracing tests, run by a real RQ worker: it continues the enqueuing
request's trace the way the email jobs do."""

from __future__ import annotations

from loguru import logger
from rq import get_current_job

from app.tracing import continue_trace

DELIVERED_KEY_PREFIX = "tests:tracing:delivered:"


def deliver_welcome(to: str) -> str:
    """Stands in for the welcome email: one Redis write inside the job's span."""
    job = get_current_job()
    assert job is not None
    with continue_trace("email welcome", job.meta.get("trace"), {"messaging.message.id": job.id}):
        job.connection.set(DELIVERED_KEY_PREFIX + to, "1", ex=60)
        logger.bind(email_to=to).info("email sent: welcome")
    return to
