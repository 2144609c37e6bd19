"""Keep out optional imports that libraries make at start-up for features Steadfast never uses."""

from __future__ import annotations

import sys

# redis-py 8 imports OpenTelemetry's metrics SDK whenever it is installed (it is, for tracing)
# so that it could export Redis metrics; Steadfast's metrics are Prometheus' and redis-py's
# observability is never switched on. That import cost ~50 modules, ~20 ms and ~1-2 MiB in
# every process. A None entry in sys.modules makes the import raise ImportError, which
# redis-py treats as "not installed". Tracing uses the trace SDK, a separate package module.
UNUSED_OPTIONAL_MODULES = ("opentelemetry.sdk.metrics",)


def skip_unused_optional_imports() -> None:
    """Make the imports above fail fast; a module something already imported is left alone."""
    for name in UNUSED_OPTIONAL_MODULES:
        sys.modules.setdefault(name, None)
