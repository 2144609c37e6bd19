"""Tracing configuration: the standard OTEL_* variables, validated with the rest of the config,
and the pieces that keep secrets and noise out of the exported spans."""

from __future__ import annotations

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace.sampling import ALWAYS_ON, Decision
from opentelemetry.trace import NonRecordingSpan, SpanContext, SpanKind, TraceFlags

from app.config import ConfigError, load_settings
from app.tracing.provider import NoOrphanClientSpans, build_sampler
from app.tracing.scrubbing import scrub_database_error, scrub_query, scrub_text


def tracing_settings(**variables: str):
    return load_settings({"APP_ENV": "test", **variables}).tracing


def test_tracing_is_off_unless_an_exporter_is_configured():
    assert tracing_settings().enabled is False
    assert tracing_settings(OTEL_SERVICE_NAME="steadfast-eu").enabled is False
    assert tracing_settings(OTEL_TRACES_EXPORTER="none").enabled is False


def test_an_otlp_endpoint_turns_tracing_on_and_gets_the_traces_path():
    config = tracing_settings(OTEL_EXPORTER_OTLP_ENDPOINT="http://collector:4318/")
    assert config.enabled is True
    assert config.traces_endpoint == "http://collector:4318/v1/traces"
    assert config.service_name == "steadfast"
    assert config.sampler == "parentbased_always_on"


def test_the_signal_specific_endpoint_is_used_as_given():
    config = tracing_settings(
        OTEL_EXPORTER_OTLP_ENDPOINT="http://ignored:4318",
        OTEL_EXPORTER_OTLP_TRACES_ENDPOINT="https://otlp.example/custom/traces",
    )
    assert config.traces_endpoint == "https://otlp.example/custom/traces"


def test_the_sdk_disabled_switch_wins_over_an_endpoint():
    config = tracing_settings(
        OTEL_EXPORTER_OTLP_ENDPOINT="http://collector:4318", OTEL_SDK_DISABLED="true"
    )
    assert config.enabled is False


def test_sampler_and_ratio_are_read():
    config = tracing_settings(
        OTEL_TRACES_EXPORTER="console",
        OTEL_TRACES_SAMPLER="parentbased_traceidratio",
        OTEL_TRACES_SAMPLER_ARG="0.25",
    )
    assert (config.sampler, config.sampler_arg) == ("parentbased_traceidratio", 0.25)
    assert "0.25" in build_sampler(config).get_description()


def test_every_tracing_problem_is_reported_together_with_the_others():
    with pytest.raises(ConfigError) as raised:
        load_settings(
            {
                "APP_ENV": "test",
                "JWT_EXPIRY": "soon",
                "OTEL_SDK_DISABLED": "maybe",
                "OTEL_TRACES_EXPORTER": "zipkin",
                "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc",
                "OTEL_EXPORTER_OTLP_ENDPOINT": "collector:4318",
                "OTEL_TRACES_SAMPLER": "sometimes",
            }
        )
    problems = "\n".join(raised.value.problems)
    for name in (
        "JWT_EXPIRY",
        "OTEL_SDK_DISABLED",
        "OTEL_TRACES_EXPORTER",
        "OTEL_EXPORTER_OTLP_PROTOCOL",
        "OTEL_EXPORTER_OTLP_ENDPOINT",
        "OTEL_TRACES_SAMPLER",
    ):
        assert name in problems


@pytest.mark.parametrize("ratio", ["half", "1.5", "-0.1"])
def test_a_sampling_ratio_outside_zero_to_one_is_refused(ratio):
    with pytest.raises(ConfigError, match="OTEL_TRACES_SAMPLER_ARG"):
        tracing_settings(OTEL_TRACES_SAMPLER="traceidratio", OTEL_TRACES_SAMPLER_ARG=ratio)


def _parent(sampled: bool = True):
    context = SpanContext(
        trace_id=0x4BF92F3577B34DA6A3CE929D0E0E4736,
        span_id=0x00F067AA0BA902B7,
        is_remote=True,
        trace_flags=TraceFlags(TraceFlags.SAMPLED if sampled else 0),
    )
    return trace.set_span_in_context(NonRecordingSpan(context))


def test_database_and_redis_calls_outside_any_request_or_job_are_dropped():
    sampler = NoOrphanClientSpans(ALWAYS_ON)
    orphan = sampler.should_sample(None, 1, "SELECT", kind=SpanKind.CLIENT)
    child = sampler.should_sample(_parent(), 1, "SELECT", kind=SpanKind.CLIENT)
    request = sampler.should_sample(None, 1, "GET /api/v1/users", kind=SpanKind.SERVER)
    assert orphan.decision == Decision.DROP
    assert child.decision == Decision.RECORD_AND_SAMPLE
    assert request.decision == Decision.RECORD_AND_SAMPLE


def test_query_parameters_that_carry_credentials_are_redacted_and_the_rest_kept():
    assert scrub_query("page=2&q=ann") == "page=2&q=ann"
    assert scrub_query("q=ann&access_token=abc&TOKEN=def&password=x") == (
        "q=ann&access_token=[REDACTED]&TOKEN=[REDACTED]&password=[REDACTED]"
    )


def test_sql_parameters_are_removed_from_error_messages():
    sqlalchemy_message = (
        "(psycopg.errors.UniqueViolation) duplicate key value violates unique constraint "
        '"uq_users_email"\nDETAIL:  Key (email)=(ann@example.com) already exists.\n'
        "[SQL: INSERT INTO users (email, password_hash) VALUES (%(email)s, %(hash)s)]\n"
        "[parameters: {'email': 'ann@example.com', 'hash': '$argon2id$v=19$secret]'}]\n"
        "(Background on this error at: https://sqlalche.me/e/20/gkpj)"
    )
    scrubbed = scrub_text(sqlalchemy_message)
    assert "ann@example.com" not in scrubbed and "argon2id" not in scrubbed
    assert "[parameters: ?]" in scrubbed and "Key (email)=(?)" in scrubbed
    # On a span only the first line is kept: the constraint, not the row.
    assert scrub_database_error(sqlalchemy_message) == (
        "(psycopg.errors.UniqueViolation) duplicate key value violates unique constraint "
        '"uq_users_email"'
    )
    assert scrub_database_error('invalid input syntax for type integer: "hunter2"') == (
        'invalid input syntax for type integer: "?"'
    )
