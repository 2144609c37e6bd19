"""Email messages rendered from text and HTML Jinja2 templates."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

TEMPLATES_DIR = Path(__file__).resolve().parent / "templates"
SUBJECTS = {
    "welcome": "Welcome to Steadfast: please confirm your email",
    "verify_email": "Confirm your new email address",
    "password_reset": "Reset your Steadfast password",
    "password_changed": "Your Steadfast password was changed",
}


@dataclass(frozen=True)
class EmailMessage:
    to: str
    subject: str
    text: str
    html: str | None = None
    template: str = ""
    # True when the body holds a one-time token: such a body must never reach a log.
    carries_secret: bool = False


@cache
def _environment() -> Environment:
    return Environment(
        loader=FileSystemLoader(TEMPLATES_DIR),
        # HTML is escaped (a user's name is user input); the text part is not HTML.
        autoescape=select_autoescape(enabled_extensions=("html",), default=False),
        undefined=StrictUndefined,
        keep_trailing_newline=True,
    )


def render(template: str, to: str, *, carries_secret: bool = False, **context: Any) -> EmailMessage:
    """Build the message `template` (templates/<template>.txt and .html) for `to`."""
    environment = _environment()
    return EmailMessage(
        to=to,
        subject=SUBJECTS[template],
        text=environment.get_template(f"{template}.txt").render(**context),
        html=environment.get_template(f"{template}.html").render(**context),
        template=template,
        carries_secret=carries_secret,
    )
