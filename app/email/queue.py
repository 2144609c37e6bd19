"""Email jobs: queued on Redis (RQ) when REDIS_URL is set, else run inline; never lost silently.

The request that causes an email only enqueues a job naming it (`welcome`, `password_reset`,
...) with ids; the job builds the message, mints any one-time token and delivers it. So the
raw token exists only in the worker's memory and in the email, never in Redis, and the
request does the same work whether or not the email will really be sent.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from flask import current_app
from loguru import logger
from redis import Redis
from redis.exceptions import RedisError

from app.state import app_state
from app.tracing import continue_trace, trace_carrier

# rq (~30 modules) is imported by the first email, not by every worker's start-up: a worker
# that never sends an email never needs it.
if TYPE_CHECKING:
    from rq import Queue

QUEUE_NAME = "emails"
# Backoff between attempts, seconds: a mail relay that is down for minutes loses nothing.
RETRY_INTERVALS_S = (10, 60, 300)
JOB_TIMEOUT_S = 60
# Failed jobs stay inspectable (rq info, FailedJobRegistry) for a week.
FAILED_JOB_TTL_S = 7 * 24 * 3600
JOB_FUNCTION = "app.email.queue.perform"


def email_queue(connection: Redis) -> Queue:
    from rq import Queue

    return Queue(QUEUE_NAME, connection=connection)


def _app_email_queue(connection: Redis) -> Queue:
    """The app's queue, built once per app (rq keeps the Redis server version it asked on it)."""
    extras = app_state().extras
    queue = extras.get("email_queue")
    if queue is None or queue.connection is not connection:
        queue = extras["email_queue"] = email_queue(connection)
    return queue


def _run(job_name: str, params: dict[str, Any]) -> None:
    from app.services.email import EMAIL_JOBS

    EMAIL_JOBS[job_name](**params)


def dispatch(job_name: str, **params: Any) -> None:
    """Queue the email job, or run it now without Redis; never raises to the caller."""
    redis = app_state().redis
    if redis is not None:
        from rq import Retry

        try:
            # On our pipeline, rq's writes (queue registration, job hash, push) go in one
            # MULTI/EXEC: one round trip instead of two.
            with redis.pipeline() as pipeline:
                _app_email_queue(redis).enqueue(
                    JOB_FUNCTION,
                    job_name,
                    params,
                    retry=Retry(max=len(RETRY_INTERVALS_S), interval=list(RETRY_INTERVALS_S)),
                    job_timeout=JOB_TIMEOUT_S,
                    failure_ttl=FAILED_JOB_TTL_S,
                    description=f"email:{job_name}",
                    # The worker's span joins the trace of the request that queued the email.
                    meta={"trace": trace_carrier()},
                    pipeline=pipeline,
                )
                pipeline.execute()
            return
        except RedisError as error:
            # Better a slower request than a lost email: send it from here instead.
            logger.bind(email_job=job_name).warning(
                "email queue unavailable ({}): sending inline", type(error).__name__
            )
    run_inline(job_name, params)


def run_inline(job_name: str, params: dict[str, Any]) -> None:
    """Run the job in this request; a failure is logged (by deliver) and swallowed."""
    from app.extensions import db

    try:
        _run(job_name, params)
    except Exception as error:  # noqa: BLE001 - an email must never fail the request
        db.session.rollback()
        logger.opt(exception=error).bind(email_job=job_name).error(
            "email job failed inline; not retried: {}", type(error).__name__
        )


def perform(job_name: str, params: dict[str, Any]) -> None:
    """RQ entry point: run the job in a fresh app context; raise so RQ retries a failure."""
    from rq import get_current_job

    job = get_current_job()
    carrier = job.meta.get("trace") if job is not None else None
    with current_app.app_context(), continue_trace(f"email {job_name}", carrier):
        try:
            _run(job_name, params)
        except Exception as error:
            if job is None or not job.retries_left:
                logger.opt(exception=error).bind(email_job=job_name).error(
                    "email job failed for good after its retries; kept in the failed registry"
                )
            else:
                logger.bind(email_job=job_name, retries_left=job.retries_left).warning(
                    "email job failed; it will be retried"
                )
            raise


def run_worker(redis_url: str, *, burst: bool = False, forking: bool = True) -> bool:
    """Work the email queue until stopped (or until it is empty, with `burst`)."""
    from rq import SimpleWorker, Worker

    # The app's Redis client times out after 1 s; a worker blocks on the queue for longer.
    connection = Redis.from_url(redis_url, socket_connect_timeout=5, health_check_interval=30)
    worker_class = Worker if forking else SimpleWorker
    worker = worker_class([email_queue(connection)], connection=connection)
    return worker.work(burst=burst, with_scheduler=True, logging_level="INFO")
