"""gunicorn's own messages (boot, worker exits, timeouts) routed through loguru."""

from __future__ import annotations

from typing import Any

from gunicorn.glogging import Logger

from app.logs import InterceptHandler


class GunicornLogger(Logger):
    def setup(self, cfg: Any) -> None:
        super().setup(cfg)
        handler = InterceptHandler()
        for stdlib_logger in (self.error_log, self.access_log):
            stdlib_logger.handlers = [handler]
            stdlib_logger.propagate = False
