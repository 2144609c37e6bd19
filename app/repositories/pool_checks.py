"""Pooled PostgreSQL connections checked on checkout without a round trip when there is no need.

SQLAlchemy's `pool_pre_ping` sends a statement (`;`) before every checkout: one more round trip
per request, about as much as a primary-key read costs on loopback. A connection can go bad
in the pool in two ways, and each can be seen more cheaply:

- The server ended it (restart, failover, `pg_terminate_backend`, an idle timeout): PostgreSQL
  sends an error and closes the socket, so an idle connection's socket becomes readable. A
  connection at rest has nothing to read, so a zero-timeout poll tells, without a round trip.
- Something between dropped it silently (a NAT or firewall timeout): that takes minutes of
  idleness. As HikariCP does (`aliveBypassWindowMs`), a connection back in use within
  IDLE_PING_AFTER_S is not pinged; one idle for longer is, as before.

A connection found dead is replaced before the request sees it, as with pre-ping: the pool
invalidates it (and the older ones, the server probably restarted) and connects again.
"""

from __future__ import annotations

import select
import time
from typing import Any

from sqlalchemy import Engine, event
from sqlalchemy.exc import InvalidatePoolError

IDLE_PING_AFTER_S = 1.0
_CHECKED_IN_AT = "steadfast_checked_in_at"


def server_has_spoken(dbapi_connection: Any) -> bool:
    """True if a psycopg connection at rest is closed or has unread data (an error, an EOF)."""
    if dbapi_connection.closed:
        return True
    # poll, not select: select fails on descriptors above 1023.
    poller = select.poll()
    poller.register(dbapi_connection.fileno(), select.POLLIN)
    return bool(poller.poll(0))


def _needs_ping(dbapi_connection: Any, connection_record: Any) -> bool:
    checked_in_at = connection_record.info.get(_CHECKED_IN_AT)
    if checked_in_at is None:
        # Fresh from connect(): nothing to check, as pre-ping skips it too.
        return False
    idle_s = time.monotonic() - checked_in_at
    return idle_s > IDLE_PING_AFTER_S or server_has_spoken(dbapi_connection)


def check_connections_on_checkout(engine: Engine) -> None:
    """Replace `pool_pre_ping` on a psycopg engine (created with it off) by the checks above."""
    dialect = engine.dialect

    @event.listens_for(engine, "checkin")
    def _note_checkin(dbapi_connection: Any, connection_record: Any) -> None:
        connection_record.info[_CHECKED_IN_AT] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _check(dbapi_connection: Any, connection_record: Any, connection_proxy: Any) -> None:
        if not _needs_ping(dbapi_connection, connection_record):
            return
        try:
            dialect.do_ping(dbapi_connection)
        except dialect.loaded_dbapi.Error as error:
            if not dialect.is_disconnect(error, dbapi_connection, None):
                raise
            # As pre-ping does: the pool drops this connection and the older ones, connects
            # again (it tries twice) and the request sees nothing.
            raise InvalidatePoolError(f"connection found dead on checkout: {error}") from error
