"""/api/docs: the interactive API documentation (Swagger UI), served offline by the app itself.

The Swagger UI files come from the pinned `flask-swagger-ui` package (its `dist/` folder); the
page and its start-up script are ours, so the page needs no inline script and no CDN.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

from flask import Blueprint, Flask, Response, render_template, send_from_directory, url_for

from app.errors import NotFoundError

DOCS_PREFIX = "/api/docs"
SWAGGER_UI_DIST = Path(str(files("flask_swagger_ui") / "dist"))
PAGE_FILES = Path(__file__).resolve().parent / "docs_page"
# Only what the page loads; the rest of the package (its own template, OAuth helper) stays unserved.
SWAGGER_UI_ASSETS = frozenset(
    {
        "swagger-ui-bundle.js",
        "swagger-ui.css",
        "index.css",
        "favicon-16x16.png",
        "favicon-32x32.png",
    }
)
PAGE_ASSETS = frozenset({"steadfast-docs.js"})
ASSET_MAX_AGE_S = 3600

blp = Blueprint("docs", __name__, url_prefix=DOCS_PREFIX, template_folder="docs_page")


@blp.get("", strict_slashes=False)
def page() -> str:
    """The Swagger UI page; it reads the document URL from a data attribute, not inline script."""
    return render_template(
        "index.html",
        spec_url=url_for("api-docs.openapi_json"),
        asset=lambda name: url_for("docs.asset", filename=name),
    )


@blp.get("/<path:filename>")
def asset(filename: str) -> Response:
    if filename in PAGE_ASSETS:
        return send_from_directory(PAGE_FILES, filename, max_age=ASSET_MAX_AGE_S)
    if filename in SWAGGER_UI_ASSETS:
        return send_from_directory(SWAGGER_UI_DIST, filename, max_age=ASSET_MAX_AGE_S)
    raise NotFoundError("No such documentation asset.")


def init_docs(app: Flask) -> None:
    app.register_blueprint(blp)
