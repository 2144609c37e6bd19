"""Hostile input against every endpoint that takes a body: always a 4xx JSON envelope.

Endpoints are discovered when the tests are collected, from the app's URL map and its served
OpenAPI document, so an endpoint added later is attacked without anyone editing this file.
Each request carries a valid access token of an ordinary user (issued without a login), so
what fails is the input, not the missing credential; admin endpoints answer 403 to that user.
"""

from __future__ import annotations

import base64
import json
import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from app import create_app
from app.services import tokens
from app.services import users as users_service
from tests.conftest import STRONG_PASSWORD, unique_email

BODY_METHODS = ("POST", "PUT", "PATCH", "DELETE")
MAX_BODY = 1024 * 1024
# Names tried when the OpenAPI document does not describe an endpoint's body.
FALLBACK_FIELDS = ("email", "password", "name", "token", "refresh_token")
# What must never reach a client: stack traces, HTML, driver or ORM internals.
LEAK_MARKERS = (
    "Traceback",
    "<html",
    "<!doctype",
    'File "',
    "sqlalchemy",
    "psycopg",
    "sqlite3",
    "werkzeug",
    "Exception",
)


@dataclass(frozen=True)
class Endpoint:
    method: str
    rule: str
    url: str
    fields: tuple[str, ...]
    documented_body: bool

    @property
    def id(self) -> str:
        return f"{self.method} {self.rule}"


@dataclass(frozen=True)
class Attack:
    name: str
    # Either raw bytes, or a value; a value is put in every field of the endpoint's body.
    raw: bytes | None = None
    value: Any = None
    content_type: str | None = "application/json"
    query: str = ""
    authorization: str | None = None  # None: a valid bearer token
    # Exact statuses expected where the endpoint documents a JSON body; else any 4xx.
    expect: frozenset[int] = field(default_factory=frozenset)


def _payload(endpoint: Endpoint, value: Any) -> bytes:
    return json.dumps({name: value for name in endpoint.fields}).encode()


def _alg_none_token() -> str:
    def part(data: dict) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()

    claims = {"sub": str(uuid.uuid4()), "jti": "x", "iat": 1, "exp": 9999999999, "type": "access"}
    return f"{part({'alg': 'none', 'typ': 'JWT'})}.{part(claims)}."


BAD_JSON = frozenset({400})
TOO_LARGE = frozenset({413})
NOT_JSON = frozenset({415})
INVALID = frozenset({422})

ATTACKS: tuple[Attack, ...] = (
    # --- the body is not a JSON object at all --------------------------------------------
    Attack("truncated-json", raw=b'{"email": ', expect=BAD_JSON),
    Attack("trailing-garbage", raw=b'{"email": "a@example.com"} x', expect=BAD_JSON),
    Attack("single-quotes", raw=b"{'email': 'a@example.com'}", expect=BAD_JSON),
    Attack("whitespace-only", raw=b"   \n\t ", expect=BAD_JSON),
    Attack("invalid-utf8", raw=b'{"email": "\xff\xfe\xfd"}', expect=BAD_JSON),
    Attack("overlong-utf8", raw=b'{"email": "\xc0\xaf"}', expect=BAD_JSON),
    Attack(
        "latin1-declared-charset",
        raw='{"email": "caf\u00e9"}'.encode("latin-1"),
        content_type="application/json; charset=latin-1",
        expect=BAD_JSON,
    ),
    Attack("utf8-bom", raw=b'\xef\xbb\xbf{"unknown": 1}'),
    Attack("utf16-body", raw='{"unknown": 1}'.encode("utf-16")),
    Attack("json-array", raw=b"[]", expect=INVALID),
    Attack("json-array-of-objects", raw=b'[{"email": "a@example.com"}]', expect=INVALID),
    Attack("json-string", raw=b'"hello"', expect=INVALID),
    Attack("json-number", raw=b"42", expect=INVALID),
    Attack("json-null", raw=b"null", expect=INVALID),
    Attack("json-true", raw=b"true", expect=INVALID),
    Attack("deeply-nested-arrays", raw=b"[" * 100_000 + b"]" * 100_000),
    Attack("deeply-nested-objects", raw=b'{"a":' * 50_000 + b"1" + b"}" * 50_000),
    Attack("huge-integer-literal", raw=b'{"email": ' + b"9" * 5000 + b"}"),
    Attack("nan-literal", raw=b'{"email": NaN, "password": NaN}'),
    Attack("infinity-literal", raw=b'{"email": Infinity, "password": -Infinity}'),
    Attack("float-overflow", raw=b'{"email": 1e999, "password": 1e999}'),
    Attack(
        "lone-surrogates",
        raw=b'{"email": "\\ud800@example.com", "password": "pass\\udfffword", '
        b'"name": "\\ud83d", "token": "\\udc00", "refresh_token": "\\ud800"}',
    ),
    Attack("duplicate-keys", raw=b'{"email": "a@example.com", "email": {"$ne": null}}'),
    Attack("prototype-pollution", raw=b'{"__proto__": {"role": "admin"}}', expect=INVALID),
    Attack(
        "mass-assignment",
        raw=b'{"role": "admin", "is_active": true, "email_verified": true, "id": "x"}',
    ),
    Attack(
        "over-max-content-length", raw=b'{"email": "' + b"a" * MAX_BODY + b'"}', expect=TOO_LARGE
    ),
    # --- not JSON by content type ----------------------------------------------------------
    Attack(
        "text-plain", raw=b'{"email": "a@example.com"}', content_type="text/plain", expect=NOT_JSON
    ),
    Attack(
        "form-urlencoded",
        raw=b"email=a%40example.com&password=x",
        content_type="application/x-www-form-urlencoded",
        expect=NOT_JSON,
    ),
    Attack(
        "multipart",
        raw=b'--b\r\nContent-Disposition: form-data; name="email"\r\n\r\nx\r\n--b--\r\n',
        content_type="multipart/form-data; boundary=b",
        expect=NOT_JSON,
    ),
    Attack(
        "xml",
        raw=b"<user><email>a@example.com</email></user>",
        content_type="application/xml",
        expect=NOT_JSON,
    ),
    Attack(
        "no-content-type", raw=b'{"email": "a@example.com"}', content_type=None, expect=NOT_JSON
    ),
    Attack(
        "octet-stream",
        raw=b"\x00\x01\x02\x03",
        content_type="application/octet-stream",
        expect=NOT_JSON,
    ),
    # --- a JSON object whose every field holds a hostile value -----------------------------
    Attack("value-nested-object", value={"$gt": ""}, expect=INVALID),
    Attack("value-array", value=["a@example.com"], expect=INVALID),
    Attack("value-empty-array", value=[], expect=INVALID),
    Attack("value-integer", value=1, expect=INVALID),
    Attack("value-negative", value=-1, expect=INVALID),
    Attack("value-float", value=3.14, expect=INVALID),
    Attack("value-huge-int", value=2**64, expect=INVALID),
    Attack("value-boolean", value=True),
    Attack("value-null", value=None),
    Attack("value-empty-string", value=""),
    Attack("value-whitespace", value="   "),
    Attack("value-nul-byte", value="a\x00b"),
    Attack("value-only-nul", value="\x00"),
    Attack("value-control-chars", value="\x01\x02\x1b[31mred"),
    Attack("value-crlf-injection", value="a\r\nSet-Cookie: x=1"),
    Attack("value-10kb", value="a" * 10_240),
    Attack("value-10kb-unicode", value="\u00e9" * 10_240),
    Attack("value-rtl-override", value="\u202egnp.exe"),
    Attack("value-zero-width", value="a\u200bb@example.com"),
    Attack("value-sql-injection", value="' OR '1'='1' --"),
    Attack("value-sql-union", value="x' UNION SELECT password_hash FROM users --"),
    Attack("value-like-wildcards", value="%_%\\"),
    Attack("value-html-script", value="<script>alert(1)</script>"),
    Attack("value-template-injection", value="{{7*7}}${7*7}#{7*7}"),
    Attack("value-jndi", value="${jndi:ldap://127.0.0.1/a}"),
    Attack("value-path-traversal", value="../../../../etc/passwd"),
    Attack("value-format-string", value="%s%s%s%n%x"),
    Attack("value-emoji", value="\U0001f600" * 300),
    Attack("value-long-email", value="a" * 300 + "@example.com"),
    Attack("value-email-with-nul", value="a@example.com\x00.evil"),
    Attack("value-lone-surrogate", value="\ud800"),
    # --- the query string and the credential -----------------------------------------------
    Attack("duplicate-query-parameter", value=1, query="?page=1&page=2", expect=BAD_JSON),
    Attack("oversized-bearer", raw=b"{}", authorization="Bearer " + "a" * 10_000),
    Attack("malformed-bearer", raw=b"{}", authorization="Bearer not.a.jwt"),
    Attack("alg-none-bearer", raw=b"{}", authorization="Bearer " + _alg_none_token()),
    Attack("basic-auth", raw=b"{}", authorization="Basic dXNlcjpwYXNz"),
    Attack("empty-bearer", raw=b"{}", authorization="Bearer "),
)


def _spec_path(rule: str) -> str:
    return re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", r"{\1}", rule)


def _url_for(rule: str) -> str:
    def argument(match: re.Match) -> str:
        converter = match.group(1) or "string"
        return {"int": "1", "uuid": str(uuid.uuid4())}.get(converter, "x")

    return re.sub(r"<(?:([^:<>]+):)?[^<>]+>", argument, rule)


def _body_fields(spec: dict, operation: dict) -> tuple[tuple[str, ...], bool]:
    content = operation.get("requestBody", {}).get("content", {})
    schema = content.get("application/json", {}).get("schema")
    if not schema:
        return FALLBACK_FIELDS, False
    if "$ref" in schema:
        schema = spec["components"]["schemas"][schema["$ref"].rsplit("/", 1)[-1]]
    properties = tuple(schema.get("properties", {})) or FALLBACK_FIELDS
    return properties, True


def discover_body_endpoints(app: Flask) -> list[Endpoint]:
    """Every /api/ route accepting a body method, with the fields its OpenAPI body names."""
    spec = app.test_client().get("/api/openapi.json").get_json()
    endpoints = []
    for rule in app.url_map.iter_rules():
        if not rule.rule.startswith("/api/"):
            continue
        for method in sorted(set(rule.methods or ()) & set(BODY_METHODS)):
            operation = spec["paths"].get(_spec_path(rule.rule), {}).get(method.lower(), {})
            fields, documented = _body_fields(spec, operation)
            endpoints.append(Endpoint(method, rule.rule, _url_for(rule.rule), fields, documented))
    return endpoints


def _collection_app() -> Flask:
    return create_app({"APP_ENV": "test", "DATABASE_URL": "sqlite://"})


ENDPOINTS = discover_body_endpoints(_collection_app())


def test_the_attack_list_is_long_enough_and_endpoints_were_found():
    assert len(ATTACKS) >= 50
    assert {"POST /api/v1/users", "POST /api/v1/auth/login", "POST /api/v1/auth/logout"} <= {
        endpoint.id for endpoint in ENDPOINTS
    }


@pytest.fixture(scope="module")
def attacked_app(request) -> Iterator[tuple[Flask, str]]:
    """One app per backend for the module, with one ordinary user; emptied afterwards."""
    from sqlalchemy import text

    from app.extensions import db

    backend = request.param
    database_url = request.getfixturevalue(f"{backend}_database_url")
    app = create_app(
        {
            "APP_ENV": "test",
            "DATABASE_URL": database_url,
            "RATE_LIMIT_DEFAULT": "1000000 per minute",
            "RATE_LIMIT_AUTH": "1000000 per minute",
            "RATE_LIMIT_LOGIN_FAILURES": "1000000 per minute",
        }
    )
    with app.app_context():
        user = users_service.register(unique_email("hostile"), STRONG_PASSWORD)
        user_id = str(user.id)
    yield app, user_id
    with app.app_context():
        db.session.remove()
        for table in reversed(db.metadata.sorted_tables):
            db.session.execute(text(f"DELETE FROM {table.name}"))
        db.session.commit()
        db.engine.dispose()


@pytest.fixture(scope="module")
def attacker(attacked_app) -> FlaskClient:
    return attacked_app[0].test_client()


def _fresh_access_token(app: Flask, user_id: str) -> str:
    # Issued directly: a hostile body must never cost an argon2 login per test.
    with app.app_context():
        return tokens.issue_pair(user_id).access_token


def _send(client: FlaskClient, endpoint: Endpoint, attack: Attack, token: str):
    body = attack.raw if attack.raw is not None else _payload(endpoint, attack.value)
    headers = {"Authorization": attack.authorization or f"Bearer {token}"}
    if attack.content_type is not None:
        headers["Content-Type"] = attack.content_type
    return client.open(
        endpoint.url + attack.query, method=endpoint.method, data=body, headers=headers
    )


def _assert_safe_error(response, endpoint: Endpoint, attack: Attack) -> None:
    text = response.get_data(as_text=True)
    where = f"{endpoint.id} <- {attack.name}: {response.status_code} {text[:300]!r}"
    assert 400 <= response.status_code < 500, where
    assert response.mimetype == "application/json", where
    body = response.get_json()
    assert body["success"] is False and body["status"] == "error", where
    assert isinstance(body["code"], str) and isinstance(body["message"], str), where
    assert body["request_id"] == response.headers["X-Request-ID"], where
    lowered = text.lower()
    for marker in LEAK_MARKERS:
        assert marker.lower() not in lowered, where
    if attack.expect and endpoint.documented_body:
        assert response.status_code in attack.expect, where


@pytest.mark.parametrize("attacked_app", ["sqlite", "postgresql"], indirect=True)
@pytest.mark.parametrize("attack", ATTACKS, ids=[attack.name for attack in ATTACKS])
@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=[endpoint.id for endpoint in ENDPOINTS])
def test_hostile_input_gets_a_4xx_envelope(attacked_app, attacker, endpoint, attack):
    app, user_id = attacked_app
    response = _send(attacker, endpoint, attack, _fresh_access_token(app, user_id))
    _assert_safe_error(response, endpoint, attack)
