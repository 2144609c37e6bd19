"""HTTP controllers: flask-smorest blueprints that parse, call one service and shape the reply."""

from __future__ import annotations

from app.api.admin import blp as admin_blueprint
from app.api.auth import blp as auth_blueprint
from app.api.errors import register_error_responses
from app.api.users import blp as users_blueprint
from app.extensions import Api

API_PREFIX = "/api/v1"


def register_blueprints(api: Api) -> None:
    register_error_responses(api.spec)
    for blueprint in (users_blueprint, auth_blueprint, admin_blueprint):
        api.register_blueprint(blueprint)
