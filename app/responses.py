"""The response class of the app: Flask's own, with a cheaper copy of its headers on the way out."""

from __future__ import annotations

from flask import Response
from werkzeug.datastructures import Headers

# What makes Werkzeug change the headers it sends: a Location or Content-Location to rewrite,
# a Content-Length to work out. The fast path below takes responses with none of that to do.
_REWRITTEN_HEADERS = frozenset({"location", "content-location"})


class SteadfastResponse(Response):
    """Flask's Response whose outgoing headers are copied without validating each value again.

    Werkzeug sends a copy of the headers, made by `Headers(self.headers)`: each value is
    converted and searched for a newline again, though every one was checked on its way into
    the response. For the common response (a Content-Length, no Location or Content-Location,
    a status with a body) nothing else of Werkzeug's method applies, so the list is copied as
    it is: -2.2 % of the instructions of a `GET /users/me` (docs/performance.md, finding 43).
    Every other response takes Werkzeug's own path.
    """

    def get_wsgi_headers(self, environ: dict) -> Headers:  # type: ignore[type-arg]
        status = self.status_code
        if status < 200 or status in (204, 304):
            return super().get_wsgi_headers(environ)
        has_length = False
        for name, _ in self.headers:
            lowered = name.lower()
            if lowered in _REWRITTEN_HEADERS:
                return super().get_wsgi_headers(environ)
            if lowered == "content-length":
                has_length = True
        if not has_length:
            return super().get_wsgi_headers(environ)
        copied = Headers()
        copied._list = self.headers._list.copy()  # the values were validated on the way in
        return copied
