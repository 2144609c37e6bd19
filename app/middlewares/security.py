"""Security headers (flask-talisman), the HTTPS redirect and CORS (flask-cors)."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from flask import Flask, Response, current_app, request
from flask_cors import CORS
from flask_cors.core import ACL_ORIGIN, ACL_REQUEST_HEADER_PRIVATE_NETWORK, FLASK_CORS_EVALUATED
from flask_talisman import Talisman

from app.config import Settings
from app.errors.handlers import error_response
from app.middlewares.headers import headers_written_by, write_headers
from app.middlewares.paths import PROBE_PATHS, PathPrefixes

AfterRequestHook = Callable[[Response], Response]

ONE_YEAR_S = 365 * 24 * 3600
# A JSON API renders nothing and is never framed: forbid every resource type.
API_CONTENT_SECURITY_POLICY = {"default-src": "'none'", "frame-ancestors": "'none'"}
DOCS_PATH_PREFIX = "/api/docs"
# Swagger UI at /api/docs runs self-hosted scripts and styles, sets inline style attributes,
# shows data: images (its SVG icons) and fetches the OpenAPI document from this origin.
# Inline scripts are allowed only with the per-request nonce: a template writes
# `<script nonce="{{ csp_nonce() }}">` (flask-talisman registers `csp_nonce` in Jinja).
DOCS_CONTENT_SECURITY_POLICY = {
    "default-src": "'none'",
    "script-src": "'self'",
    "style-src": "'self'",
    "img-src": "'self' data:",
    "connect-src": "'self'",
    "base-uri": "'none'",
    "form-action": "'none'",
    "frame-ancestors": "'none'",
}
_DOCS_PATHS = PathPrefixes(DOCS_PATH_PREFIX)
# Headers a browser client may read from a cross-origin response.
CORS_EXPOSED_HEADERS = [
    "X-Request-ID",
    "X-Trace-ID",
    "Location",
    "Retry-After",
    "RateLimit-Limit",
    "RateLimit-Remaining",
    "RateLimit-Reset",
    "X-RateLimit-Limit",
    "X-RateLimit-Remaining",
    "X-RateLimit-Reset",
]
CORS_ALLOWED_HEADERS = ["Authorization", "Content-Type", "X-Request-ID"]
# The paths CORS answers on (a regex flask-cors matches from the start of the path).
CORS_RESOURCES = r"/api/*"
_CORS_PATHS = re.compile(CORS_RESOURCES)
CORS_PREFLIGHT_MAX_AGE_S = 600
# How many request origins the CORS memo keeps: CORS_ORIGINS are few, but any client can
# send any Origin, and a disallowed one's (empty) answer is kept too.
CORS_MEMO_MAX_ORIGINS = 64
_PRIVATE_NETWORK_REQUEST_KEY = "HTTP_" + ACL_REQUEST_HEADER_PRIVATE_NETWORK.upper().replace(
    "-", "_"
)


def content_security_policy_for(path: str) -> dict[str, str]:
    """The CSP for a path: the Swagger UI one under /api/docs, `default-src 'none'` elsewhere."""
    if _DOCS_PATHS.match(path):
        return DOCS_CONTENT_SECURITY_POLICY
    return API_CONTENT_SECURITY_POLICY


def is_plain_http_allowed(path: str) -> bool:
    # Load balancers and Prometheus probe over plain HTTP inside the network.
    return PROBE_PATHS.match(path)


class ProxyAwareTalisman(Talisman):
    """flask-talisman with three changes this API needs.

    - HTTPS is judged by `request.is_secure` alone. Stock Talisman also believes a raw
      X-Forwarded-Proto header from anyone; here that header counts only when ProxyFix
      trusts the proxy that sent it (TRUSTED_PROXIES), which then sets the WSGI scheme.
    - The redirect is a 308 (method and body kept, so a POST stays a POST) with a JSON body,
      never the HTML page of `flask.redirect`; health and metrics paths are never redirected.
    - The CSP is chosen by path, so the docs page gets one it can run under.

    And one for speed: an API response's headers are captured from talisman once per scheme
    and written with one scan of the names (`_set_response_headers`).
    """

    # The headers talisman writes on an API response, by whether it went out over HTTPS
    # (HSTS), captured from talisman itself the first time each is needed.
    _api_headers: dict[bool, list[tuple[str, str]]]

    def init_app(self, app: Flask, **options: Any) -> None:
        self._api_headers = {}
        super().init_app(app, **options)

    def _set_response_headers(self, response: Response) -> Response:
        # Stock talisman sets each of its five headers with `headers[name] = value`, which
        # Werkzeug answers by lower-casing and comparing every header already there (~15 on an
        # API response). An API response's set never varies (no nonce, one CSP, HSTS by
        # scheme): it is captured once, and written with one scan of the names (finding 43).
        # Views with their own talisman options and the docs pages take the stock path.
        options = self._get_local_options()
        if options["content_security_policy"] is not API_CONTENT_SECURITY_POLICY or hasattr(
            current_app.view_functions.get(request.endpoint), "talisman_view_options"
        ):
            return super()._set_response_headers(response)
        secure = request.is_secure
        talisman_headers = self._api_headers.get(secure)
        if talisman_headers is None:
            talisman_headers = headers_written_by(super()._set_response_headers)
            self._api_headers[secure] = talisman_headers
        write_headers(response.headers, talisman_headers)
        return response

    def _get_local_options(self) -> dict[str, Any]:
        # Asked for three times per request (nonce, headers, CSP); the answer depends only on
        # the request, so it is worked out once and kept on it, as talisman keeps its nonce.
        options = getattr(request, "_steadfast_talisman_options", None)
        if options is None:
            options = dict(super()._get_local_options())
            options["content_security_policy"] = content_security_policy_for(request.path)
            request._steadfast_talisman_options = options  # type: ignore[attr-defined]
        return options

    def _make_nonce(self) -> None:
        # Only the docs page runs scripts; the API's CSP (`default-src 'none'`) has no place
        # for a nonce, so the other requests skip drawing one.
        if self._get_local_options()["content_security_policy"] is DOCS_CONTENT_SECURITY_POLICY:
            super()._make_nonce()

    def _force_https(self) -> Response | None:
        if not self.force_https or request.is_secure or is_plain_http_allowed(request.path):
            return None
        location = request.url.replace("http://", "https://", 1)
        return error_response(
            308,
            "https_required",
            "This API is served over HTTPS only; repeat the request at the Location URL.",
            headers={"Location": location},
        )

    def _set_hsts_headers(self, headers: Any) -> None:
        # HSTS over plain HTTP is ignored by browsers (RFC 6797 section 8.1), so send it only
        # on responses that really went out over HTTPS.
        if self.strict_transport_security and request.is_secure:
            super()._set_hsts_headers(headers)


def init_security_headers(app: Flask, settings: Settings) -> None:
    """Talisman on every response; HSTS and the HTTPS redirect in production only."""
    production = settings.is_production
    ProxyAwareTalisman(
        app,
        force_https=production,
        strict_transport_security=production,
        strict_transport_security_max_age=ONE_YEAR_S,
        strict_transport_security_include_subdomains=True,
        content_security_policy=API_CONTENT_SECURITY_POLICY,
        frame_options="DENY",
        referrer_policy="no-referrer",
        x_content_type_options=True,
        # This API sets no cookies and serves no documents these policies would govern.
        feature_policy={},
        permissions_policy={},
        document_policy={},
        session_cookie_secure=True,
    )


def _vary_on_origin(response: Response) -> Response:
    # flask-cors adds `Vary: Origin` only when more than one origin is configured. With one,
    # the response still depends on the request's Origin (Access-Control-Allow-Origin for the
    # allowed origin and, flask-cors's default, for a request without one; none for any other
    # origin), so a shared cache must key on it (Fetch standard, "CORS protocol and HTTP
    # caches").
    if not _CORS_PATHS.match(request.path):
        return response
    # Read and written as text: `response.vary` parses the header into a HeaderSet and writes it
    # back through a callback, about 2 % of a `GET /users/me`'s CPU (finding 42).
    vary = response.headers.get("Vary")
    if vary is None:
        response.headers.add("Vary", "Origin")
    elif "origin" not in [item.strip().lower() for item in vary.split(",")]:
        response.headers["Vary"] = f"{vary}, Origin"
    return response


def memoised_cors(stock_hook: AfterRequestHook) -> AfterRequestHook:
    """flask-cors's after-request hook, with its answer kept per Origin for simple requests.

    For a request that is not a preflight and asks nothing of private networks, flask-cors's
    headers depend on the Origin alone (its options are fixed at start-up), yet it works them
    out on every response: the path unquoted and matched, the origin matched, a MultiDict
    built. Its answer is captured on an empty response the first time an origin is seen, and
    added as it would add it after that: -2.3 % of a `/users/me`'s instructions (finding 43).
    Anything else (no Origin, preflights, other paths, CORS already set) takes its own path.
    """
    memo: dict[str, list[tuple[str, str]]] = {}

    def cors_after_request(response: Response) -> Response:
        environ = request.environ
        origin = environ.get("HTTP_ORIGIN")
        if (
            origin is None
            or request.method == "OPTIONS"
            or _PRIVATE_NETWORK_REQUEST_KEY in environ
            or not _CORS_PATHS.match(request.path)
            or hasattr(response, FLASK_CORS_EVALUATED)
            or response.headers.get(ACL_ORIGIN)
        ):
            return stock_hook(response)
        cors_headers = memo.get(origin)
        if cors_headers is None:
            cors_headers = headers_written_by(stock_hook)
            if len(memo) < CORS_MEMO_MAX_ORIGINS:
                memo[origin] = cors_headers
        for name, value in cors_headers:
            response.headers.add(name, value)
        return response

    cors_after_request.memo = memo  # type: ignore[attr-defined]
    return cors_after_request


def init_cors(app: Flask, settings: Settings) -> None:
    """CORS for the explicit CORS_ORIGINS only; any other origin gets no CORS headers at all."""
    if not settings.cors_origins:
        return
    # Registered before flask-cors's hook, so it runs after it (Flask runs them in reverse)
    # and finds a Vary that flask-cors wrote.
    app.after_request(_vary_on_origin)
    CORS(
        app,
        resources={CORS_RESOURCES: {"origins": list(settings.cors_origins)}},
        supports_credentials=True,
        allow_headers=CORS_ALLOWED_HEADERS,
        expose_headers=CORS_EXPOSED_HEADERS,
        methods=["GET", "POST", "PATCH", "PUT", "DELETE", "OPTIONS"],
        max_age=CORS_PREFLIGHT_MAX_AGE_S,
        vary_header=True,
    )
    hooks = app.after_request_funcs[None]
    if getattr(hooks[-1], "__name__", None) != "cors_after_request":
        # A flask-cors that registers its hook otherwise: fail at start-up, not silently.
        raise RuntimeError("flask-cors's after-request hook was not found")
    hooks[-1] = memoised_cors(hooks[-1])
