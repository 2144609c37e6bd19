"""SteadfastResponse sends exactly the headers Werkzeug's own Response would, for every kind
of response, and never lets the sent copy change the response's own headers."""

from __future__ import annotations

import pytest
from flask import Response
from werkzeug.test import EnvironBuilder

from app.responses import SteadfastResponse

ENVIRON = EnvironBuilder(path="/api/v1/things/7", base_url="https://api.example").get_environ()


def _streamed():
    yield b"chunk"


CASES = {
    "json with its length": dict(response='{"a": 1}', status=200, mimetype="application/json"),
    "created, relative location": dict(
        response="{}", status=201, headers={"Location": "/api/v1/things/8"}
    ),
    "redirect, non-ASCII location": dict(
        response="", status=308, headers={"location": "/api/v1/ünïcode"}
    ),
    "content location": dict(response="x", headers={"Content-Location": "/a b"}),
    "no content": dict(response="", status=204, headers={"X-Kept": "1"}),
    "not modified": dict(response="body", status=304, headers={"ETag": '"v1"'}),
    "informational": dict(response="", status=103, headers={"Link": "</style.css>"}),
    "streamed, no length": dict(response=_streamed(), status=200),
    "length removed by a hook": dict(response="abc", status=200),
    "duplicate names kept": dict(
        response="{}", headers=[("Vary", "Origin"), ("vary", "Accept"), ("X-Kept", "1")]
    ),
}


@pytest.mark.parametrize("name", CASES)
def test_the_headers_sent_are_those_werkzeug_would_send(name):
    def build(response_class):
        kwargs = dict(CASES[name])
        if name == "streamed, no length":
            kwargs["response"] = _streamed()
        response = response_class(**kwargs)
        if name == "length removed by a hook":
            del response.headers["Content-Length"]
        return response

    expected = build(Response).get_wsgi_headers(ENVIRON)
    response = build(SteadfastResponse)
    sent = response.get_wsgi_headers(ENVIRON)
    assert sent.to_wsgi_list() == expected.to_wsgi_list()
    # The sent headers are a copy: changing one leaves the response's own alone.
    before = list(response.headers)
    sent.add("X-Added-On-The-Way-Out", "1")
    assert list(response.headers) == before


def test_the_app_answers_with_steadfast_responses(app, client):
    assert app.response_class is SteadfastResponse
    response = client.get("/health/live")
    assert response.headers["Content-Length"] == str(len(response.get_data()))


def test_a_full_stack_app_sends_its_headers_once(make_app):
    app = make_app(CORS_ORIGINS="https://app.example")
    response = app.test_client().get("/api/v1/users/me", headers={"Origin": "https://app.example"})
    assert response.status_code == 401
    names = [name.lower() for name, _ in response.headers]
    assert len(names) == len(set(names)), names
