"""schemathesis over every operation of the generated OpenAPI document, in process (WSGI).

The operations are read from /api/openapi.json at test time, so an endpoint added later is
covered without editing this file. Each operation gets the examples, coverage (boundary and
invalid values) and fuzzing phases, in positive and negative modes; authorised operations get a
fresh, valid admin token for every request.
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any

import pytest
import schemathesis
from flask import Flask
from schemathesis.config import SchemathesisConfig
from schemathesis.engine import Status, StopReason, events, from_schema

from app.repositories import users as users_repository
from app.services import tokens
from app.services import users as users_service
from tests.conftest import STRONG_PASSWORD, unique_email
from tests.processes import REPO_ROOT

# SPEC section 2 contract: never a 5xx for any input, and every response (status code, media
# type, headers, body) is one the document promises. negative_data_rejection adds that input
# the document calls invalid is refused with a 4xx; the other checks need state or a live server.
CHECKS = (
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_headers_conformance",
    "response_schema_conformance",
    "negative_data_rejection",
    "missing_required_header",
    "unsupported_method",
)
MAX_EXAMPLES_PER_OPERATION = 100
SUMMARY_PATH = REPO_ROOT / "test-artifacts" / "schemathesis-summary.json"


@pytest.fixture
def database_url(postgresql_database_url: str) -> str:
    # PostgreSQL only: it is the production database and the stricter one (NUL bytes, lengths).
    return postgresql_database_url


@pytest.fixture
def admin_id(app: Flask) -> str:
    """An admin made through the registration service, so admin-only operations are reachable."""
    with app.app_context():
        user = users_service.register(unique_email("contract"), STRONG_PASSWORD, "Contract")
        # Promotion has no public path but the admin CLI; the repository's commit keeps it honest.
        user.role = "admin"
        users_repository.commit()
        return str(user.id)


@dataclass
class RunReport:
    """What the engine did, per operation, and everything it flagged."""

    cases: Counter = field(default_factory=Counter)
    statuses: dict[str, Counter] = field(default_factory=lambda: defaultdict(Counter))
    exercised: set[str] = field(default_factory=set)
    failures: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    stop_reason: StopReason | None = None

    def record(self, event: events.ScenarioFinished) -> None:
        label = event.label or "?"
        self.cases[label] += len(event.recorder.cases)
        for interaction in event.recorder.interactions.values():
            if interaction.response is not None:
                self.statuses[label][interaction.response.status_code] += 1
        if event.status not in (Status.SKIP, Status.INTERRUPTED):
            self.exercised.add(label)
        for checks in event.recorder.checks.values():
            for check in checks:
                if check.status == Status.FAILURE and check.failure_info is not None:
                    failure = check.failure_info.failure
                    self.failures.append(
                        f"{label}: {check.name}: {failure.title}\n{failure.message}\n"
                        f"{check.failure_info.code_sample}"
                    )

    def as_json(self) -> dict[str, Any]:
        return {
            "operations": len(self.cases),
            "cases": sum(self.cases.values()),
            "per_operation": {
                label: {"cases": count, "statuses": dict(sorted(self.statuses[label].items()))}
                for label, count in sorted(self.cases.items())
            },
            "failures": len(self.failures),
        }


def run_schemathesis(app: Flask, admin_id: str) -> RunReport:
    config = SchemathesisConfig.from_dict(
        {
            "checks": {"enabled": False, **{name: {"enabled": True} for name in CHECKS}},
            "generation": {
                "mode": "all",
                "max-examples": MAX_EXAMPLES_PER_OPERATION,
                # No example database left in the checkout.
                "database": "none",
            },
            # Stateful links are not declared in the document yet.
            "phases": {"stateful": {"enabled": False}},
        }
    )
    schema = schemathesis.openapi.from_wsgi("/api/openapi.json", app, config=config)

    # refresh_interval=None: a fresh token per request, so an operation that revokes the one it
    # was given (logout, password change) cannot starve the operations tested after it.
    @schema.auth(refresh_interval=None)
    class AdminBearerToken:
        def get(self, case: Any, context: Any) -> str:
            with app.app_context():
                return tokens.issue_pair(admin_id).access_token

        def set(self, case: Any, token: str, context: Any) -> None:
            case.headers = {**(case.headers or {}), "Authorization": f"Bearer {token}"}

    report = RunReport()
    for event in from_schema(schema).execute():
        if isinstance(event, events.ScenarioFinished):
            report.record(event)
        elif isinstance(event, events.NonFatalError):
            report.errors.append(f"{event.label}: {event.value!r}")
        elif isinstance(event, events.FatalError):
            report.errors.append(f"fatal: {event.exception!r}")
        elif isinstance(event, events.EngineFinished):
            report.stop_reason = event.stop_reason
    return report


def documented_operations(app: Flask) -> set[str]:
    document = app.test_client().get("/api/openapi.json").get_json()
    return {
        f"{method.upper()} {path}"
        for path, item in document["paths"].items()
        for method in item
        if method in ("get", "put", "post", "patch", "delete")
    }


def test_every_documented_operation_keeps_its_contract_under_generated_input(
    app: Flask, admin_id: str
) -> None:
    report = run_schemathesis(app, admin_id)

    SUMMARY_PATH.parent.mkdir(exist_ok=True)
    SUMMARY_PATH.write_text(json.dumps(report.as_json(), indent=2) + "\n")
    print(json.dumps(report.as_json(), indent=2))

    assert report.errors == []
    assert report.stop_reason is StopReason.COMPLETED
    assert report.exercised == documented_operations(app)
    assert all(count > 0 for count in report.cases.values())
    assert not report.failures, "\n\n".join(report.failures[:10])
