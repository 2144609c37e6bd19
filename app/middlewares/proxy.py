"""Proxy trust: believe X-Forwarded-* only from the configured number of proxy hops."""

from __future__ import annotations

from flask import Flask
from werkzeug.middleware.proxy_fix import ProxyFix


def init_proxy_fix(app: Flask, trusted_proxies: int) -> None:
    """Wrap the WSGI app in ProxyFix trusting `trusted_proxies` hops; a no-op at 0.

    With 0 the X-Forwarded-* headers are ignored, so a client cannot spoof its IP (and so
    its rate-limit key) or claim HTTPS. With 1, the values nginx appends are believed:
    `remote_addr` becomes the client nginx saw and `is_secure` follows X-Forwarded-Proto.
    """
    if trusted_proxies <= 0:
        return
    app.wsgi_app = ProxyFix(  # type: ignore[method-assign]
        app.wsgi_app,
        x_for=trusted_proxies,
        x_proto=trusted_proxies,
        x_host=trusted_proxies,
        x_port=trusted_proxies,
        x_prefix=trusted_proxies,
    )
