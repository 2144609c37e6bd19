"""The OpenAPI document is valid, complete and honest about every route under /api/v1.

Routes are read from app.url_map and views at test time, so an endpoint added later is held to
the same rules without editing this file.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from flask import Flask
from openapi_spec_validator import validate

from app.api import API_PREFIX
from app.middlewares.security import DOCS_CONTENT_SECURITY_POLICY

HTTP_METHODS = ("GET", "PUT", "POST", "PATCH", "DELETE")
ERROR_ENVELOPE_REF = "#/components/schemas/ErrorEnvelope"
# What every operation with a JSON body can answer before its view runs (SPEC section 2).
BODY_ERROR_STATUSES = ("400", "413", "415", "422")
_FLASK_PATH_PARAMETER = re.compile(r"<(?:[^<>:]+:)?([^<>]+)>")


@pytest.fixture(scope="module")
def api_app() -> Flask:
    # The document does not depend on the data: no database needed to read it.
    from app import create_app

    return create_app({"APP_ENV": "test", "DATABASE_URL": "sqlite://"})


@pytest.fixture(scope="module")
def document(api_app: Flask) -> dict[str, Any]:
    response = api_app.test_client().get("/api/openapi.json")
    assert response.status_code == 200
    assert response.mimetype == "application/json"
    return response.get_json()


def openapi_path(rule: str) -> str:
    return _FLASK_PATH_PARAMETER.sub(r"{\1}", rule)


def api_routes(app: Flask) -> Iterator[tuple[str, str, Callable]]:
    """(method, OpenAPI path, view function) for every route under /api/v1."""
    for rule in app.url_map.iter_rules():
        if not rule.rule.startswith(API_PREFIX):
            continue
        view = app.view_functions[rule.endpoint]
        for method in sorted(rule.methods & set(HTTP_METHODS)):
            view_class = getattr(view, "view_class", None)
            handler = getattr(view_class, method.lower(), view) if view_class else view
            yield method, openapi_path(rule.rule), handler


def operations(document: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, item in document["paths"].items():
        for method, operation in item.items():
            if method.upper() in HTTP_METHODS:
                yield method.upper(), path, operation


def argument_locations(view: Callable) -> set[str]:
    """Where the view's flask-smorest arguments come from: json, query, headers..."""
    arguments = getattr(view, "_apidoc", {}).get("arguments", {})
    return {parameter["in"] for parameter in arguments.get("parameters", [])}


def test_the_document_is_valid_openapi_3(document: dict[str, Any]) -> None:
    assert document["openapi"].startswith("3.")
    validate(document)


def test_the_document_describes_the_bearer_scheme(document: dict[str, Any]) -> None:
    assert document["components"]["securitySchemes"]["bearerAuth"] == {
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "JWT",
    }


def test_every_api_route_is_documented(api_app: Flask, document: dict[str, Any]) -> None:
    routes = {(method, path) for method, path, _ in api_routes(api_app)}
    documented = {(method, path) for method, path, _ in operations(document)}
    assert routes, "no route under /api/v1"
    assert routes - documented == set()
    # And nothing is documented that does not exist.
    api_documented = {entry for entry in documented if entry[1].startswith(API_PREFIX)}
    assert api_documented - routes == set()


def test_every_operation_documents_success_and_errors_with_the_envelope(
    document: dict[str, Any],
) -> None:
    for method, path, operation in operations(document):
        label = f"{method} {path}"
        responses = operation["responses"]
        assert operation.get("summary"), (
            f"{label}: no summary (its @blp.doc(summary=...): docstrings are stripped under -OO)"
        )
        successes = [status for status in responses if status.startswith(("2", "3"))]
        assert successes, f"{label}: no success response"
        for status in successes:
            if status != "204":
                assert "application/json" in responses[status].get("content", {}), label
        errors = [status for status in responses if status not in successes]
        assert "default" in errors, f"{label}: no default error response"
        for status in errors:
            schema_ref = resolve_response(document, responses[status])["content"][
                "application/json"
            ]["schema"]["$ref"]
            assert schema_ref == ERROR_ENVELOPE_REF, f"{label} {status}: {schema_ref}"


def resolve_response(document: dict[str, Any], response: dict[str, Any]) -> dict[str, Any]:
    if "$ref" in response:
        name = response["$ref"].rsplit("/", 1)[-1]
        return document["components"]["responses"][name]
    return response


def test_every_operation_documents_its_body_parameters_and_security_as_the_view_uses_them(
    api_app: Flask, document: dict[str, Any]
) -> None:
    for method, path, view in api_routes(api_app):
        label = f"{method} {path}"
        operation = document["paths"][path][method.lower()]
        documented_statuses = set(operation["responses"])
        locations = argument_locations(view)

        if "json" in locations:
            assert "application/json" in operation["requestBody"]["content"], label
            missing = set(BODY_ERROR_STATUSES) - documented_statuses
            assert not missing, f"{label}: body errors not documented: {sorted(missing)}"
        else:
            assert "requestBody" not in operation, f"{label}: documents a body it never reads"

        # OpenAPI lets a path item declare parameters shared by all its operations
        # (flask-smorest puts a `<uuid:user_id>` there); they count for each operation.
        shared = document["paths"][path].get("parameters", [])
        parameters = {(p["in"], p["name"]) for p in [*shared, *operation.get("parameters", [])]}
        for name in _FLASK_PATH_PARAMETER.findall(path.replace("{", "<").replace("}", ">")):
            assert ("path", name) in parameters, f"{label}: path parameter {name} undocumented"
        if "query" in locations:
            assert any(where == "query" for where, _ in parameters), label
            assert "422" in documented_statuses, f"{label}: query validation errors undocumented"

        if getattr(view, "requires_bearer_token", False):
            assert operation.get("security") == [{"bearerAuth": []}], f"{label}: no security"
            assert "401" in documented_statuses, f"{label}: 401 undocumented"
            if getattr(view, "required_role", None):
                assert "403" in documented_statuses, f"{label}: 403 undocumented"
        else:
            assert not operation.get("security"), f"{label}: documents a token it never checks"


def csp_directives(policy: str) -> dict[str, set[str]]:
    """A CSP as {directive: sources}, per-request nonces left out (they allow no fixed source)."""
    directives = {}
    for directive in filter(None, (part.strip() for part in policy.split(";"))):
        name, *sources = directive.split()
        directives[name] = {source for source in sources if not source.startswith("'nonce-")}
    return directives


def test_the_docs_page_carries_its_own_csp_and_loads_only_local_assets(api_app: Flask) -> None:
    client = api_app.test_client()
    page = client.get("/api/docs")
    assert page.status_code == 200
    assert page.mimetype == "text/html"
    assert csp_directives(page.headers["Content-Security-Policy"]) == {
        name: set(sources.split()) for name, sources in DOCS_CONTENT_SECURITY_POLICY.items()
    }
    html = page.get_data(as_text=True)
    assert 'data-spec-url="/api/openapi.json"' in html
    assert "<script>" not in html, "inline script would need 'unsafe-inline'"
    assets = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert assets and all(asset.startswith("/api/docs/") for asset in assets), assets
    for asset in assets:
        response = client.get(asset)
        assert response.status_code == 200, asset
        assert csp_directives(response.headers["Content-Security-Policy"]) == {
            name: set(sources.split()) for name, sources in DOCS_CONTENT_SECURITY_POLICY.items()
        }


def test_the_docs_page_serves_only_its_own_assets(api_app: Flask) -> None:
    client = api_app.test_client()
    for path in ("/api/docs/oauth2-redirect.html", "/api/docs/../config.py", "/api/docs/nope"):
        response = client.get(path)
        assert response.status_code == 404, path
        assert response.get_json()["code"] == "not_found"
