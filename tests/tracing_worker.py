"""`python -m tests.tracing_worker REDIS_URL QUEUE`: an RQ worker shaped like `flask worker`.

The app is built (so tracing starts, from the OTEL_* variables) in the worker process, which
forks a work horse per job, as RQ's default Worker does.
"""

from __future__ import annotations

import sys

from redis import Redis
from rq import Queue, Worker

from app import create_app


def main(redis_url: str, queue_name: str) -> int:
    app = create_app()
    connection = Redis.from_url(redis_url)
    with app.app_context():
        worked = Worker([Queue(queue_name, connection=connection)], connection=connection).work(
            burst=True
        )
    return 0 if worked else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2]))
