"""Baseline 1: a bare Flask hello-world, the ceiling for any endpoint served by Flask here."""

from __future__ import annotations

from flask import Flask

app = Flask(__name__)


@app.get("/")
def hello() -> dict[str, str]:
    return {"message": "Hello, World!"}
