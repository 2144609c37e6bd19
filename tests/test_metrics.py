"""/metrics in one process: request, auth, email, query and loop-lag metrics; the token rule."""

from __future__ import annotations

import pytest
from prometheus_client import REGISTRY

from app import create_app
from app.config import load_settings
from app.email import delivery
from app.email.messages import EmailMessage
from app.monitoring import metrics
from tests.conftest import assert_error_envelope, bearer


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def test_metrics_are_prometheus_text(client):
    client.get("/health/live")

    response = client.get("/metrics")

    assert response.status_code == 200
    assert response.mimetype == "text/plain"
    text = response.get_data(as_text=True)
    assert "# TYPE steadfast_http_requests_total counter" in text
    assert "# TYPE steadfast_http_request_duration_seconds histogram" in text
    assert "steadfast_loop_lag_seconds_bucket" in text


def test_requests_are_counted_by_url_rule_method_and_status(client, registered_user):
    labels = {"endpoint": "/api/v1/users/me", "method": "GET", "status": "200"}
    before = sample("steadfast_http_requests_total", **labels)
    timed_before = sample("steadfast_http_request_duration_seconds_count", **labels)

    client.get("/api/v1/users/me", headers=bearer(registered_user["access_token"]))

    assert sample("steadfast_http_requests_total", **labels) == before + 1
    assert sample("steadfast_http_request_duration_seconds_count", **labels) == timed_before + 1


def test_routes_with_ids_share_one_series_and_unknown_paths_are_not_labelled_by_path(client):
    client.get("/no/such/path/123")

    text = client.get("/metrics").get_data(as_text=True)
    assert "/no/such/path/123" not in text
    assert 'endpoint="<unmatched>",method="GET",status="404"' in text


def test_invented_http_methods_share_one_series(client):
    # Any token is a valid method: a client sending new ones must not grow the series set.
    before = sample(
        "steadfast_http_requests_total",
        endpoint=metrics.UNMATCHED_ENDPOINT,
        method="OTHER",
        status="405",
    )

    for method in ("BREW", "WHEN", "PROPFIND"):
        client.open("/health/live", method=method)

    text = client.get("/metrics").get_data(as_text=True)
    assert 'method="BREW"' not in text and 'method="PROPFIND"' not in text
    after = sample(
        "steadfast_http_requests_total",
        endpoint=metrics.UNMATCHED_ENDPOINT,
        method="OTHER",
        status="405",
    )
    assert after == before + 3


def test_requests_refused_before_the_view_are_counted_too(client):
    labels = {"endpoint": "/api/v1/users", "method": "POST", "status": "415"}
    before = sample("steadfast_http_requests_total", **labels)

    client.post("/api/v1/users", data="x", content_type="text/plain")

    assert sample("steadfast_http_requests_total", **labels) == before + 1


def test_401_answers_count_as_auth_failures(client):
    me = {"endpoint": "/api/v1/users/me"}
    login = {"endpoint": "/api/v1/auth/login"}
    me_before = sample("steadfast_auth_failures_total", **me)
    login_before = sample("steadfast_auth_failures_total", **login)

    client.get("/api/v1/users/me")
    client.get("/api/v1/users/me", headers=bearer("not-a-token"))
    client.post(
        "/api/v1/auth/login", json={"email": "nobody@example.com", "password": "wrong password"}
    )

    assert sample("steadfast_auth_failures_total", **me) == me_before + 2
    assert sample("steadfast_auth_failures_total", **login) == login_before + 1


def test_database_statements_are_timed(client):
    before = sample("steadfast_db_query_duration_seconds_count", operation="SELECT")

    client.get("/health")

    assert sample("steadfast_db_query_duration_seconds_count", operation="SELECT") > before


class RefusingBackend:
    def send(self, message, sender):
        raise ConnectionRefusedError("mail server down")


def test_emails_sent_and_failed_are_counted(app_context, monkeypatch):
    message = EmailMessage(to="ann@example.com", subject="Hello", text="Hi")
    sent_before = sample("steadfast_emails_total", outcome="sent")
    failed_before = sample("steadfast_emails_total", outcome="failed")

    delivery.deliver(message)
    # The boundary we cannot break for real in this test is the mail server itself.
    monkeypatch.setattr(delivery, "backend_for", lambda settings: RefusingBackend())
    with pytest.raises(delivery.DeliveryError):
        delivery.deliver(message)

    assert sample("steadfast_emails_total", outcome="sent") == sent_before + 1
    assert sample("steadfast_emails_total", outcome="failed") == failed_before + 1


def test_rate_limit_rejections_are_counted_by_scope(make_app, redis_url):
    client = make_app(REDIS_URL=redis_url, RATE_LIMIT_AUTH="1 per hour").test_client()
    before = sample("steadfast_rate_limit_rejections_total", scope="auth")

    credentials = {"email": "nobody@example.com", "password": "wrong password"}
    first = client.post("/api/v1/auth/login", json=credentials)
    second = client.post("/api/v1/auth/login", json=credentials)

    assert (first.status_code, second.status_code) == (401, 429)
    assert sample("steadfast_rate_limit_rejections_total", scope="auth") == before + 1


def test_rate_limit_rejections_can_be_recorded_directly():
    before = sample("steadfast_rate_limit_rejections_total", scope="custom")

    metrics.record_rate_limit_rejection("custom")

    assert sample("steadfast_rate_limit_rejections_total", scope="custom") == before + 1


def production_app(database_url: str, redis_url: str, metrics_token: str | None):
    settings = load_settings(
        {
            "APP_ENV": "production",
            "DATABASE_URL": database_url,
            "REDIS_URL": redis_url,
            "JWT_SECRET": "x" * 40,
            "LOG_FORMAT": "pretty",
            **({"METRICS_TOKEN": metrics_token} if metrics_token else {}),
        }
    )
    return create_app(settings=settings)


def test_metrics_are_disabled_in_production_without_a_token(postgresql_database_url, redis_url):
    client = production_app(postgresql_database_url, redis_url, None).test_client()

    assert_error_envelope(client.get("/metrics"), 404, "not_found")


def test_metrics_need_the_token_in_production(postgresql_database_url, redis_url):
    client = production_app(postgresql_database_url, redis_url, "s3cret-metrics").test_client()

    assert_error_envelope(client.get("/metrics"), 401, "unauthorized")
    assert_error_envelope(client.get("/metrics", headers=bearer("wrong")), 401, "unauthorized")
    allowed = client.get("/metrics", headers=bearer("s3cret-metrics"))
    assert allowed.status_code == 200
    assert b"steadfast_http_requests_total" in allowed.data


@pytest.mark.parametrize("path", ["/health", "/health/live", "/health/ready"])
def test_health_stays_open_in_production(postgresql_database_url, redis_url, path):
    client = production_app(postgresql_database_url, redis_url, "s3cret-metrics").test_client()

    assert client.get(path).status_code == 200
