"""Users and access tokens for the `/users/me` load of many clients (the `me-many` scenario).

The `me` scenario sends one token, as one client reusing its access token does, so every
request after the first finds that token among the ones a worker remembers having verified
(app/services/verified_tokens.py, docs/performance.md finding 46). `me-many` rotates through
far more users' tokens than a worker remembers, to show the cost of a request whose token is
verified in full: the first request after a login or a refresh, or a service whose workers see
more live tokens than they keep.

Run in the benchmark's environment (its database, its JWT secret):

    python -m benchmarks.many_users --like EMAIL --count N --output PATH

Inserts N users copying the row of EMAIL (an existing user, its password hash included: no
argon2id is run for them, and nothing in this load checks a password), issues one access token
for each with the app's own token service, writes the tokens to PATH as a JSON list and prints
a marker line with their number.
"""

from __future__ import annotations

import argparse
import json
import sys
import uuid
from pathlib import Path

RESULT_MARKER = "BENCH_MANY_USERS "
# Columns a copy gets afresh; every other column is the template's.
_OWN_COLUMNS = ("id", "email")


def create_users_and_tokens(like_email: str, count: int) -> list[str]:
    """`count` new users like `like_email`'s, and an access token for each (app context)."""
    from sqlalchemy import insert, select

    from app.extensions import db
    from app.models.user import User
    from app.services import tokens

    template = db.session.execute(select(User).where(User.email == like_email)).scalar_one()
    shared = {
        column.key: getattr(template, column.key)
        for column in User.__table__.columns
        if column.key not in _OWN_COLUMNS
    }
    batch = uuid.uuid4().hex[:8]
    rows = [
        {**shared, "id": uuid.uuid4(), "email": f"bench-many-{batch}-{number}@example.com"}
        for number in range(count)
    ]
    db.session.execute(insert(User), rows)
    db.session.commit()
    return [tokens.issue_pair(str(row["id"])).access_token for row in rows]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="users and access tokens for `me-many`")
    parser.add_argument("--like", required=True, help="email of the user to copy")
    parser.add_argument("--count", type=int, required=True)
    parser.add_argument("--output", type=Path, required=True)
    arguments = parser.parse_args(argv)
    if arguments.count < 1:
        parser.error("--count must be at least 1")

    from app import create_app

    with create_app().app_context():
        access_tokens = create_users_and_tokens(arguments.like, arguments.count)
    arguments.output.write_text(json.dumps(access_tokens))
    sys.stdout.write(RESULT_MARKER + json.dumps({"tokens": len(access_tokens)}) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
