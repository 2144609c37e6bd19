"""gunicorn settings for the baselines: the project's own server settings (workers, threads,
worker class, keep-alive, recycling...) copied from its gunicorn.conf.py, without its hooks or
logging, so every target is served the same way."""

import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO_ROOT))

from benchmarks.gunicorn_settings import server_settings  # noqa: E402

globals().update(server_settings(REPO_ROOT / "gunicorn.conf.py"))
