"""Monitoring: health checks, Prometheus metrics, the loop-latency sampler, crash handling.

Nothing here imports prometheus_client at package import time: gunicorn's master must set
PROMETHEUS_MULTIPROC_DIR first (see app/monitoring/gunicorn_hooks.py).
"""

from __future__ import annotations

from flask import Flask


def init_monitoring(app: Flask) -> None:
    """Health and metrics endpoints, request and query metrics, thread crash handling, and the
    loop-lag sampler when no gunicorn master started one (flask run, the test client)."""
    from app.extensions import db
    from app.monitoring import crashes, loop_lag, metrics, process
    from app.monitoring.endpoints import blp
    from app.monitoring.live_probe import init_live_probe
    from app.monitoring.slow_queries import instrument_engine
    from app.state import EXTENSION_KEY

    config = app.extensions[EXTENSION_KEY].settings
    metrics.init_request_metrics(app)
    metrics.connect_rate_limit_rejections()
    app.register_blueprint(blp)
    # Called before create_app wraps the app in ProxyFix, so that it runs inside it.
    init_live_probe(app, config)
    with app.app_context():
        for engine in db.engines.values():
            instrument_engine(engine, config.slow_query_ms)
    crashes.install_thread_excepthook()
    if not process.is_gunicorn_worker() and not process.is_gunicorn_master():
        loop_lag.start_sampler(
            config.loop_lag_sample_ms, config.loop_lag_report_s, config.loop_lag_threshold_ms
        )
