"""The email queue: RQ on a real Redis, a real worker (`flask worker`), retries, fallbacks."""

from __future__ import annotations

import os

import pytest
from redis import Redis
from rq import Queue
from rq.job import Job

from app.email.queue import QUEUE_NAME, RETRY_INTERVALS_S, run_worker
from tests.conftest import assert_error_envelope, register, unique_email
from tests.mail import token_in
from tests.processes import free_port, run_flask


def email_queue(redis_url: str) -> Queue:
    return Queue(QUEUE_NAME, connection=Redis.from_url(redis_url))


@pytest.fixture
def queued_app(make_app, redis_url, smtp_server):
    return make_app(REDIS_URL=redis_url, EMAIL_BACKEND="smtp", SMTP_URL=smtp_server.url)


def work_in_process(app) -> None:
    """A real RQ worker (SimpleWorker, burst mode) in this process, against the real Redis."""
    with app.app_context():
        run_worker(app.extensions["steadfast"].settings.redis_url, burst=True, forking=False)


def make_retries_due(redis_url: str) -> int:
    """Move jobs waiting for their backoff to the queue now, instead of waiting 10-300 s."""
    queue = email_queue(redis_url)
    job_ids = queue.scheduled_job_registry.get_job_ids()
    for job_id in job_ids:
        queue.scheduled_job_registry.remove(job_id)
        queue.enqueue_job(Job.fetch(job_id, connection=queue.connection))
    return len(job_ids)


def test_with_redis_the_request_only_enqueues_the_email(queued_app, redis_url, mailbox):
    client = queued_app.test_client()
    email = unique_email()
    assert register(client, email).status_code == 201
    queue = email_queue(redis_url)
    assert queue.count == 1
    job = queue.jobs[0]
    assert job.args[0] == "welcome" and set(job.args[1]) == {"user_id"}
    # No token in Redis: the worker mints it when it sends.
    assert "token" not in str(job.args) and mailbox.messages == []
    assert job.retries_left == len(RETRY_INTERVALS_S)
    assert job.retry_intervals == list(RETRY_INTERVALS_S)


def test_queueing_an_email_is_one_redis_round_trip(queued_app, redis_url, monkeypatch):
    from redis.connection import AbstractConnection

    from app.email.queue import dispatch

    register(queued_app.test_client(), unique_email())  # rq has asked the server version once
    sent = []
    real_send = AbstractConnection.send_packed_command
    monkeypatch.setattr(
        AbstractConnection,
        "send_packed_command",
        lambda self, command, *args, **kwargs: (
            sent.append(command) or real_send(self, command, *args, **kwargs)
        ),
    )
    with queued_app.app_context():
        dispatch("welcome", user_id="00000000-0000-4000-8000-000000000000")
    # Queue registration, job hash and push: one MULTI/EXEC on one write.
    assert len(sent) == 1
    queue = email_queue(redis_url)
    assert queue.count == 2
    job = queue.jobs[-1]
    assert job.args == ("welcome", {"user_id": "00000000-0000-4000-8000-000000000000"})
    assert job.retries_left == len(RETRY_INTERVALS_S)


@pytest.mark.slow
def test_flask_worker_sends_the_queued_email_and_its_token_verifies(
    queued_app, redis_url, database_url, smtp_server
):
    client = queued_app.test_client()
    email = unique_email()
    register(client, email)
    environment = {
        **os.environ,
        "APP_ENV": "test",
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "EMAIL_BACKEND": "smtp",
        "SMTP_URL": smtp_server.url,
    }
    worker = run_flask(environment, "worker", "--burst")
    assert worker.returncode == 0, worker.stdout + worker.stderr
    token = token_in(smtp_server.mailbox.wait_for(email))
    assert token not in worker.stdout + worker.stderr
    assert client.post("/api/v1/auth/verify-email", json={"token": token}).status_code == 204
    assert email_queue(redis_url).count == 0


def test_a_refused_send_is_retried_with_backoff_then_delivered(
    queued_app, redis_url, mailbox, log_records
):
    client = queued_app.test_client()
    email = unique_email()
    register(client, email)
    mailbox.refuse_next = 1
    work_in_process(queued_app)
    assert mailbox.to(email) == []
    queue = email_queue(redis_url)
    [job_id] = queue.scheduled_job_registry.get_job_ids()
    assert Job.fetch(job_id, connection=queue.connection).retries_left == 2
    assert any(r["message"] == "email job failed; it will be retried" for r in log_records)
    make_retries_due(redis_url)
    work_in_process(queued_app)
    message = mailbox.wait_for(email)
    # The retry minted a fresh token, and it works.
    response = client.post("/api/v1/auth/verify-email", json={"token": token_in(message)})
    assert response.status_code == 204


def test_after_its_last_retry_a_job_is_kept_as_failed_and_logged(
    queued_app, redis_url, mailbox, log_records
):
    register(queued_app.test_client(), unique_email())
    mailbox.refuse_next = len(RETRY_INTERVALS_S) + 1
    work_in_process(queued_app)
    while make_retries_due(redis_url):
        work_in_process(queued_app)
    queue = email_queue(redis_url)
    assert queue.failed_job_registry.count == 1
    assert mailbox.messages == []
    failures = [r for r in log_records if r["message"].startswith("email delivery failed")]
    assert len(failures) == len(RETRY_INTERVALS_S) + 1
    assert any("failed for good" in r["message"] for r in log_records)


def test_when_redis_is_down_the_email_is_sent_inline_instead(make_app, smtp_server, log_records):
    dead_redis = f"redis://127.0.0.1:{free_port()}/0"
    client = make_app(
        REDIS_URL=dead_redis, EMAIL_BACKEND="smtp", SMTP_URL=smtp_server.url
    ).test_client()
    email = unique_email()
    assert register(client, email).status_code == 201
    assert token_in(smtp_server.mailbox.wait_for(email))
    assert any("email queue unavailable" in r["message"] for r in log_records)


def test_password_reset_through_the_queue(queued_app, mailbox):
    client = queued_app.test_client()
    email = unique_email()
    register(client, email)
    assert client.post("/api/v1/auth/password-reset", json={"email": email}).status_code == 202
    assert (
        client.post(
            "/api/v1/auth/password-reset", json={"email": unique_email("nobody")}
        ).status_code
        == 202
    )
    work_in_process(queued_app)
    assert len(mailbox.messages) == 2  # the welcome and the reset, nothing for "nobody"
    token = token_in(mailbox.wait_for(email, count=2))
    confirm = client.post(
        "/api/v1/auth/password-reset/confirm",
        json={"token": token, "new_password": "a brand new passphrase 42"},
    )
    assert confirm.status_code == 204
    reused = client.post(
        "/api/v1/auth/password-reset/confirm",
        json={"token": token, "new_password": "another new passphrase 43"},
    )
    assert_error_envelope(reused, 401, "unauthorized")


@pytest.mark.slow
def test_flask_worker_without_redis_explains_itself():
    environment = {**os.environ, "APP_ENV": "test"}
    environment.pop("REDIS_URL", None)
    result = run_flask(environment, "worker", "--burst")
    assert result.returncode != 0 and "REDIS_URL is not set" in result.stderr
