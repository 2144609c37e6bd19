"""Steadfast: the application factory."""

from __future__ import annotations

from app.lean_imports import skip_unused_optional_imports
from app.startup_gc import collector_paused

skip_unused_optional_imports()

# Imports build long-lived objects only; the collector would scan them ~300 times for nothing,
# or once in full after the pause: they are frozen instead.
with collector_paused(freeze_after=True):
    import os
    from collections.abc import Mapping
    from pathlib import Path
    from typing import Any

    from flask import Flask
    from loguru import logger
    from redis import Redis

    from app.config import INSTANCE_DIR, Settings, load_settings
    from app.extensions import AUTOCOMMIT_BIND, Api, db
    from app.flask_app import SteadfastFlask
    from app.logs import configure_logging
    from app.state import AppState, attach_state
    from app.tracing import init_tracing


# Bounded waits everywhere: a slow dependency must cost a 503, never a hung worker.
DATABASE_STATEMENT_TIMEOUT_MS = 5000
DATABASE_CONNECT_TIMEOUT_S = 3
# A session whose client vanished mid-transaction (network partition) releases its locks.
DATABASE_IDLE_IN_TRANSACTION_TIMEOUT_MS = 60_000
# A client-side bound for a server that never answers (see app/repositories/connections.py);
# longer than the statement timeout so a merely slow query is cancelled cleanly by the server.
DATABASE_WAIT_TIMEOUT_S = DATABASE_STATEMENT_TIMEOUT_MS / 1000 + 2
REDIS_TIMEOUT_S = 1.0


def create_app(
    overrides: Mapping[str, str] | None = None, *, settings: Settings | None = None
) -> Flask:
    """Build the app. `overrides` are environment variables laid over the process's own."""
    with collector_paused():
        return _build_app(overrides, settings)


def _build_app(overrides: Mapping[str, str] | None, settings: Settings | None) -> Flask:
    if settings is None:
        environ = None if overrides is None else {**os.environ, **overrides}
        settings = load_settings(environ)
    configure_logging(settings)
    if settings.jwt_secret_is_dev_default:
        logger.warning(
            "JWT_SECRET is not set: using the PUBLIC development secret. "
            "Tokens signed with it are forgeable; never run like this in production."
        )

    app = SteadfastFlask(__name__, instance_path=str(INSTANCE_DIR))
    app.config.update(_flask_config(settings))
    attach_state(app, _build_state(settings))
    # First: the request span must open before any other hook runs, and the database
    # instrumentation must be in place before the engine is created.
    init_tracing(app, settings)

    db.init_app(app)
    _bound_database_waits(app)
    from app.monitoring import init_monitoring

    init_monitoring(app)
    _register_http_layer(app, settings)

    from app.cli import register_cli

    register_cli(app)

    from app.services.passwords import warm_up

    warm_up()
    return app


def _flask_config(settings: Settings) -> dict[str, Any]:
    engine_options = _engine_options(settings.database_url)
    return {
        "TESTING": settings.app_env == "test",
        "SQLALCHEMY_DATABASE_URI": settings.database_url,
        "SQLALCHEMY_ENGINE_OPTIONS": engine_options,
        "SQLALCHEMY_BINDS": _binds(settings.database_url, engine_options),
        "SQLALCHEMY_TRACK_MODIFICATIONS": False,
        "MAX_CONTENT_LENGTH": settings.max_content_length,
        "API_TITLE": "Steadfast",
        "API_VERSION": settings.version,
        "OPENAPI_VERSION": "3.0.3",
        "OPENAPI_URL_PREFIX": "/api",
        "OPENAPI_JSON_PATH": "openapi.json",
    }


def _engine_options(database_url: str) -> dict[str, Any]:
    if database_url.startswith("sqlite"):
        Path(INSTANCE_DIR).mkdir(parents=True, exist_ok=True)
        # Writers wait for the file lock instead of failing at once.
        return {"connect_args": {"timeout": 15}}
    return {
        # Replaced by app/repositories/pool_checks.py: a ping only when one can tell anything.
        "pool_pre_ping": False,
        "pool_recycle": 1800,
        "pool_timeout": 5,
        "pool_size": 5,
        "max_overflow": 5,
        "connect_args": {
            "connect_timeout": DATABASE_CONNECT_TIMEOUT_S,
            "options": (
                f"-c statement_timeout={DATABASE_STATEMENT_TIMEOUT_MS} "
                f"-c idle_in_transaction_session_timeout={DATABASE_IDLE_IN_TRANSACTION_TIMEOUT_MS}"
            ),
            "application_name": "steadfast",
        },
    }


def _binds(database_url: str, engine_options: dict[str, Any]) -> dict[str, Any]:
    """On PostgreSQL, a second engine on the same database whose connections are opened in
    autocommit, for work that needs no transaction (app/extensions.py,
    `AutocommitCapableSession`).

    Its own pool: a request takes a connection from one pool or the other, never both.
    Flask-SQLAlchemy gives a bind none of SQLALCHEMY_ENGINE_OPTIONS: the default engine's
    timeouts and pool bounds are passed again here.
    """
    if not database_url.startswith("postgresql"):
        return {}
    return {
        AUTOCOMMIT_BIND: {"url": database_url, **engine_options, "isolation_level": "AUTOCOMMIT"}
    }


def _bound_database_waits(app: Flask) -> None:
    from app.repositories.connections import bound_database_waits, release_sessions_quietly
    from app.repositories.pool_checks import check_connections_on_checkout

    with app.app_context():
        for engine in db.engines.values():
            bound_database_waits(engine, DATABASE_WAIT_TIMEOUT_S)
            if engine.dialect.name == "postgresql":
                check_connections_on_checkout(engine)
    release_sessions_quietly(app, db.session)


def _build_state(settings: Settings) -> AppState:
    from app.services.token_store import MemoryTokenStore, RedisTokenStore

    redis = None
    token_store: Any = MemoryTokenStore()
    if settings.redis_url:
        redis = Redis.from_url(
            settings.redis_url,
            socket_timeout=REDIS_TIMEOUT_S,
            socket_connect_timeout=REDIS_TIMEOUT_S,
            health_check_interval=30,
        )
        token_store = RedisTokenStore(redis)
    return AppState(settings=settings, redis=redis, token_store=token_store)


def _register_http_layer(app: Flask, settings: Settings) -> None:
    from app.api import register_blueprints
    from app.api.docs import init_docs
    from app.errors.handlers import register_error_handlers
    from app.middlewares.auth import init_token_read_ahead
    from app.middlewares.input_guards import init_input_guards
    from app.middlewares.proxy import init_proxy_fix
    from app.middlewares.rate_limits import apply_route_limits, init_rate_limits
    from app.middlewares.request_context import init_request_context
    from app.middlewares.security import init_cors, init_security_headers

    init_proxy_fix(app, settings.trusted_proxies)
    init_request_context(app)
    init_security_headers(app, settings)
    init_cors(app, settings)
    # Before the limiter's hook: a bearer token's revocation check rides in its Redis script.
    init_token_read_ahead(app)
    init_rate_limits(app, settings)
    init_input_guards(app)
    api = Api(
        app,
        spec_kwargs={"info": {"description": "User accounts: registration, login, profile."}},
    )
    api.spec.components.security_scheme(
        "bearerAuth", {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}
    )
    register_blueprints(api)
    apply_route_limits(app)
    init_docs(app)
    register_error_handlers(app)
