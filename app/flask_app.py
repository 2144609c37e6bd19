"""The Flask class of the app: Flask's own, but for what an automatic OPTIONS answers."""

from __future__ import annotations

from flask import Flask, Response


class SteadfastFlask(Flask):
    """Flask whose automatic OPTIONS reply is 204 No Content with its `Allow` header.

    Flask's default is a 200 with an empty body typed text/html, the one reply of the API that
    would not be JSON (SPEC section 2). A CORS preflight gets the same 204, with the headers
    flask-cors adds; browsers accept any 2xx for a preflight.
    """

    def make_default_options_response(self) -> Response:
        response = super().make_default_options_response()
        response.status_code = 204
        # Nothing follows, so nothing to type: Werkzeug would call the empty body text/html.
        del response.headers["Content-Type"]
        return response
