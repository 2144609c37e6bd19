"""What a process with tracing off does not import: OpenTelemetry's SDKs."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent

# A fresh interpreter: this test process has imported everything already.
_REPORT_IMPORTS = """
import json, sys
from app import create_app
app = create_app({"DATABASE_URL": "sqlite://", "RATELIMIT_STORAGE_URI": "memory://"})
response = app.test_client().get("/health/live")
from redis.observability import providers
loaded = [name for name, module in sys.modules.items() if module is not None]
print(json.dumps({
    "status": response.status_code,
    "redis_sees_otel_metrics_sdk": providers.OTEL_AVAILABLE,
    "opentelemetry": sorted(name for name in loaded if name.startswith("opentelemetry")),
}))
"""


def _imports_of_a_fresh_app() -> dict:
    completed = subprocess.run(
        [sys.executable, "-c", _REPORT_IMPORTS],
        cwd=REPO_ROOT,
        env={"PATH": "/usr/bin:/bin", "APP_ENV": "test"},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return json.loads(completed.stdout.strip().splitlines()[-1])


def test_with_tracing_off_no_opentelemetry_sdk_is_imported():
    report = _imports_of_a_fresh_app()

    assert report["status"] == 200
    assert not report["redis_sees_otel_metrics_sdk"]
    sdk_modules = [name for name in report["opentelemetry"] if name.startswith("opentelemetry.sdk")]
    assert sdk_modules == []
    # Nor the trace API, which the log patcher would otherwise consult on every line.
    assert "opentelemetry.trace" not in report["opentelemetry"]
