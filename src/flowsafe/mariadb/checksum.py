"""Table checksums of the data a dump holds, independent of the dump's text.

A drill that only compares re-dumped SQL text cannot see what mariadb-dump itself
loses (FLOAT digits, some charsets). So the backup records ``CHECKSUM TABLE`` of
every table *as the dump saw it*: mariadb-dump's consistent snapshot cannot be
shared, so two snapshots of our own bracket it, one opened just before the dump
starts and one just after its snapshot exists. A table not written in between
(``information_schema.TABLES.UPDATE_TIME``, set at commit) is the same in all
three, and its checksum is the dump's; a table written in between gets its
checksum in both brackets, and keeps it only if they agree. The checksums run in
a thread while the dump streams.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from datetime import datetime
from typing import Any

import pymysql

from flowsafe.errors import FlowsafeError
from flowsafe.mariadb.connection import DbTarget, connect
from flowsafe.mariadb.statements import quote_name

log = logging.getLogger(__name__)


def _snapshot(target: DbTarget) -> pymysql.Connection[Any]:
    conn = connect(target)
    with conn.cursor() as cur:
        cur.execute("SET SESSION TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        cur.execute("START TRANSACTION WITH CONSISTENT SNAPSHOT")
    return conn


def checksum(conn: pymysql.Connection[Any], table: str) -> int | None:
    """``CHECKSUM TABLE`` (EXTENDED: the rows themselves) in this connection's snapshot."""
    with conn.cursor() as cur:
        cur.execute(f"CHECKSUM TABLE {quote_name(table)} EXTENDED")
        row = cur.fetchone()
    return None if row is None or row[1] is None else int(row[1])


class Bracket:
    """Checksums of ``tables`` as a dump taken between ``open()`` and ``close()`` saw them."""

    def __init__(self, target: DbTarget, tables: list[str]) -> None:
        self.target = target
        self.tables = tables
        self.before: pymysql.Connection[Any] | None = None
        self.after: pymysql.Connection[Any] | None = None
        self.since: datetime | None = None
        self.changed: set[str] = set()
        self.result: dict[str, int | None] = {}
        self.error: BaseException | None = None
        self.thread: threading.Thread | None = None

    def open(self) -> None:
        """Just before the dump starts."""
        conn = connect(self.target)
        with conn.cursor() as cur:
            cur.execute("SELECT NOW()")
            row = cur.fetchone()
        conn.close()
        self.since = row[0] if row else None
        self.before = _snapshot(self.target)

    def close(self) -> None:
        """Just after the dump's snapshot exists: note what changed since ``open``, then
        compute the checksums in the background."""
        self.after = _snapshot(self.target)
        with self.after.cursor() as cur:
            cur.execute("SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = "
                        "%s AND UPDATE_TIME >= %s", (self.target.database, self.since))
            self.changed = {str(row[0]) for row in cur.fetchall()}
        self.thread = threading.Thread(target=self._compute, name="checksums", daemon=True)
        self.thread.start()

    def _compute(self) -> None:
        assert self.before is not None and self.after is not None
        try:
            for table in self.tables:
                value = checksum(self.before, table)
                if table in self.changed and checksum(self.after, table) != value:
                    log.info("table %s changed as the dump started: no checksum", table)
                    value = None
                self.result[table] = value
        except BaseException as exc:  # handed over by wait()
            self.error = exc

    def wait(self) -> dict[str, int | None]:
        """The checksums (None for a table written while the dump started)."""
        if self.thread is not None:
            self.thread.join()
        self.release()
        if self.error is not None:
            if isinstance(self.error, pymysql.err.MySQLError):
                raise FlowsafeError(f"cannot checksum the tables: {self.error.args[-1]}")
            raise self.error
        return self.result

    def release(self) -> None:
        """Close both snapshots (a checksum still running then fails, and is dropped)."""
        for conn in (self.before, self.after):
            if conn is not None:
                with contextlib.suppress(pymysql.err.Error, OSError):
                    conn.close()
        if self.thread is not None:
            self.thread.join(timeout=10)
