"""Slow queries are logged with their duration and statement, never with their parameters."""

from __future__ import annotations

from tests.conftest import register, unique_email


def slow_query_records(records):
    return [record for record in records if record.get("slow_query")]


def test_queries_over_the_threshold_are_logged_without_parameters(make_app, log_records):
    client = make_app(SLOW_QUERY_MS="0").test_client()
    email = unique_email("secret-param")

    register(client, email)

    slow = slow_query_records(log_records)
    assert slow, "no slow-query line with SLOW_QUERY_MS=0"
    for record in slow:
        assert record["level"] == "WARNING"
        assert record["duration_ms"] >= 0
        assert record["threshold_ms"] == 0
        assert record["statement"]
        assert email not in str(record) and "secret-param" not in str(record)
    assert any("users" in record["statement"].lower() for record in slow)


def test_fast_queries_are_not_logged(make_app, log_records):
    client = make_app(SLOW_QUERY_MS="60000").test_client()

    register(client)

    assert slow_query_records(log_records) == []
