"""User queries."""

from __future__ import annotations

import uuid

from sqlalchemy import bindparam, false, func, or_, select, update
from sqlalchemy import delete as delete_statement
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import defer

from app.extensions import db
from app.models import OneTimeToken, User
from app.repositories.errors import DuplicateError

# Built once: SQLAlchemy memoises a statement's cache key on the object, so every look-up
# skips rebuilding the expression and its key. By email: about 0.13 ms of CPU a login. By id:
# `Session.get` builds its select and key on each call, about 0.12 ms of every authenticated
# request (finding 40), where this runs one prebuilt statement. The look-up by id serves every
# authenticated request, and only the password checks read the hash: it is loaded on first
# use (finding 44).
_SELECT_BY_ID = (
    select(User).options(defer(User.password_hash)).where(User.id == bindparam("user_id"))
)
_SELECT_BY_EMAIL = select(User).where(User.email == bindparam("email"))


def find_by_id(user_id: uuid.UUID) -> User | None:
    """The user with this id, always queried.

    Unlike `Session.get`, a user the session already holds costs a query too (pending changes
    are flushed first, and the object held is what comes back); no caller looks the same user
    up twice in a request on its hot path. `password_hash` is not read with the row: reading
    it costs one more SELECT.
    """
    return db.session.execute(_SELECT_BY_ID, {"user_id": user_id}).scalar_one_or_none()


def find_by_email(normalised_email: str) -> User | None:
    return db.session.execute(_SELECT_BY_EMAIL, {"email": normalised_email}).scalar_one_or_none()


def _autocommit_unless_under_way() -> None:
    """Run the session's statements in autocommit until its transaction ends, unless work is
    under way.

    For work that is one statement (a login's SELECT, a registration's INSERT), a transaction
    only adds round trips: with psycopg 3, BEGIN and the closing COMMIT or ROLLBACK are each
    one of their own, and each costs the database server CPU too. One statement is atomic and
    consistent by itself. A session already in a transaction, or holding changes not yet
    written, keeps its transaction.
    """
    session = db.session()
    if session.in_transaction() or session.new or session.dirty or session.deleted:
        return
    session.begin_in_autocommit()


def read_outside_transaction() -> None:
    """Run the rest of this session's reads in autocommit: for requests that only read.

    Under PostgreSQL's READ COMMITTED (the default) every statement takes its own snapshot,
    inside a transaction or not, so a read-only request sees exactly what it would have seen;
    what it saves is the BEGIN and the ROLLBACK, two of the four round trips of
    `GET /users/me`. Callers must not write afterwards: each statement would commit alone.
    """
    _autocommit_unless_under_way()


def find_by_email_outside_transaction(normalised_email: str) -> User | None:
    """`find_by_email` for a request that reads one row and writes at most one statement.

    Login: the SELECT is its only round trip (no BEGIN, no ROLLBACK at teardown); a rehash
    that follows is one UPDATE, written and committed by itself.
    """
    _autocommit_unless_under_way()
    return find_by_email(normalised_email)


def add(user: User) -> User:
    """Insert and commit; DuplicateError when the unique email index refuses it.

    The INSERT runs in autocommit when it is the session's only work (no BEGIN, no COMMIT
    round trip). The committed row holds exactly what was just written (every default is
    computed in Python), so the object stays loaded: reading it after the commit (the
    response, the email job's id) would otherwise cost a pool checkout, BEGIN, SELECT and
    ROLLBACK.
    """
    _autocommit_unless_under_way()
    db.session.add(user)
    commit(keep_loaded=True)
    return user


def commit(keep_loaded: bool = False) -> None:
    """Commit; `keep_loaded` keeps loaded objects valid (for rows nobody else can have changed)."""
    session = db.session()
    expire_on_commit = session.expire_on_commit
    session.expire_on_commit = not keep_loaded
    try:
        session.commit()
    except IntegrityError as error:
        session.rollback()
        raise DuplicateError(str(error.orig.__class__.__name__)) from error
    finally:
        session.expire_on_commit = expire_on_commit


def rollback() -> None:
    db.session.rollback()


def lock_active_admin_ids() -> set[uuid.UUID]:
    """Ids of the active admins, locked against concurrent change until the transaction ends.

    PostgreSQL: SELECT ... FOR UPDATE locks the rows (a concurrent demotion waits, then
    re-checks the WHERE clause). SQLite has no row locks: a no-op write first takes the
    database's write lock, which serialises every writer until this transaction ends.
    """
    if db.session.get_bind().dialect.name == "sqlite":
        db.session.execute(update(User).where(false()).values(role=User.role))
    query = select(User.id).where(User.role == "admin", User.is_active.is_(True))
    return set(db.session.execute(query.with_for_update()).scalars())


def delete(user: User) -> None:
    # Explicit, because SQLite enforces ON DELETE CASCADE only with a per-connection pragma.
    db.session.execute(delete_statement(OneTimeToken).where(OneTimeToken.user_id == user.id))
    db.session.delete(user)
    db.session.commit()


SORTS = {
    "created_at": (User.created_at.asc(), User.id.asc()),
    "-created_at": (User.created_at.desc(), User.id.desc()),
    "email": (User.email.asc(),),
    "-email": (User.email.desc(),),
}


def escape_like(text: str) -> str:
    """`text` matched literally inside LIKE: its wildcards and the escape char escaped."""
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def list_page(
    page: int,
    per_page: int,
    sort: str = "-created_at",
    q: str | None = None,
    role: str | None = None,
    is_active: bool | None = None,
) -> tuple[list[User], int]:
    """One page of users matching the filters, and the total number that match."""
    conditions = []
    if q:
        pattern = f"%{escape_like(q.lower())}%"
        conditions.append(
            or_(
                User.email.like(pattern, escape="\\"),
                func.lower(User.name).like(pattern, escape="\\"),
            )
        )
    if role is not None:
        conditions.append(User.role == role)
    if is_active is not None:
        conditions.append(User.is_active.is_(is_active))
    total = db.session.execute(
        select(func.count()).select_from(User).where(*conditions)
    ).scalar_one()
    users = db.session.execute(
        select(User)
        .where(*conditions)
        .order_by(*SORTS[sort])
        .limit(per_page)
        .offset((page - 1) * per_page)
    ).scalars()
    return list(users), total
