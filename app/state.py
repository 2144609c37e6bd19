"""Per-application state (settings and shared clients), reached from services via current_app."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from flask import Flask, current_app

from app.config import Settings
from app.services.verified_tokens import VerifiedTokens

if TYPE_CHECKING:
    from redis import Redis

    from app.services.token_store import TokenStore
    from app.services.tokens import TokenClaims

EXTENSION_KEY = "steadfast"


@dataclass
class AppState:
    settings: Settings
    redis: Redis | None
    token_store: TokenStore
    extras: dict[str, Any] = field(default_factory=dict)
    # Per app, as its secret is: what one app verified says nothing to another.
    verified_access_tokens: VerifiedTokens[TokenClaims] = field(default_factory=VerifiedTokens)


def attach_state(app: Flask, state: AppState) -> None:
    app.extensions[EXTENSION_KEY] = state


def app_state() -> AppState:
    return current_app.extensions[EXTENSION_KEY]


def settings() -> Settings:
    return app_state().settings
