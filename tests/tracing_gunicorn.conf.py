"""The project's gunicorn.conf.py plus the tracing hook in post_fork, for the tracing tests.

Once gunicorn.conf.py calls `init_tracing_for_worker` itself, the second call here is a no-op.
"""

import runpy
from pathlib import Path

from app.tracing import init_tracing_for_worker

_project = runpy.run_path(str(Path(__file__).resolve().parent.parent / "gunicorn.conf.py"))
globals().update({k: v for k, v in _project.items() if not k.startswith("__")})
_project_post_fork = _project.get("post_fork")


def post_fork(server, worker):
    if _project_post_fork is not None:
        _project_post_fork(server, worker)
    init_tracing_for_worker(_project["settings"])
