"""Loading ITFlow's own ``db.sql`` into a private database, one checked statement at a time.

db.sql is PHP-written and hostile input: it is cut into statements as the mariadb client
cuts them (``statements.Splitter``, line by line as it streams out of the archive), and
each must be of a kind a dump holds: session ``SET``s, ``DROP TABLE IF EXISTS`` (skipped:
the database is new), ``CREATE TABLE`` and ``INSERT`` of unqualified tables
(``classify_table_statement``: no other database, no DATA DIRECTORY, no odd engine),
views and triggers (created after the rows, as the server's root with ``CURRENT_USER`` as
DEFINER; a restore gives them the site's own account), and the ``SET AUTOCOMMIT``/
``COMMIT`` around it all (flowsafe commits itself). Statements go one per query as a
throwaway account with rights on the target database only. The first statement that is
refused or fails names its line, and nothing is imported.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pymysql

from flowsafe.errors import VerificationError
from flowsafe.mariadb import accounts
from flowsafe.mariadb.connection import DbTarget, connect, server_version
from flowsafe.mariadb.load import open_session
from flowsafe.mariadb.statements import (
    Splitter,
    Statement,
    UnsafeStatementError,
    check_set,
    classify_routines_statement,
    classify_table_statement,
    named_table,
    with_definer,
)
from flowsafe.mariadb.survey import version_number

LINE_LIMIT = 256 << 20  # a longer line would not fit any server's packet limit either
COMMIT_EVERY = 5000
_TRANSACTION = re.compile(rb"(?:SET\s+AUTOCOMMIT\s*=\s*[01]|COMMIT|START\s+TRANSACTION)",
                          re.IGNORECASE)


@dataclass
class Loaded:
    """What db.sql held: tables and rows loaded, views and triggers created."""

    tables: int = 0
    rows: int = 0
    objects: list[Statement] = field(default_factory=list)


def lines_of(chunks: Iterable[bytes], where: str) -> Iterator[bytes]:
    """The lines (with their newlines) of a stream of byte chunks."""
    rest = b""
    for chunk in chunks:
        parts = (rest + chunk).split(b"\n")
        rest = parts.pop()
        if len(rest) > LINE_LIMIT:
            raise VerificationError(f"{where}: db.sql has a line longer than "
                                    f"{LINE_LIMIT >> 20} MiB: it is not ITFlow's")
        for part in parts:
            yield part + b"\n"
    if rest:
        yield rest


class _Load:
    def __init__(self, conn: pymysql.Connection[Any], where: str) -> None:
        self.conn = conn
        self.where = where
        self.loaded = Loaded()
        self.pending = 0

    def refused(self, message: str) -> VerificationError:
        return VerificationError(f"{self.where}: db.sql {message}; the archive is damaged or "
                                 "not ITFlow's: nothing was imported")

    def run(self, statement: Statement) -> None:
        try:
            self.conn.query(statement.code)
        except pymysql.err.MySQLError as exc:
            number = exc.args[0] if exc.args else 0
            text = str(exc.args[1]) if len(exc.args) > 1 else str(exc)
            raise self.refused(f"line {statement.line} ('{statement.head()}') does not load: "
                               f"error {number}: {text.splitlines()[0][:300]}") from None
        self.pending += 1
        if self.pending >= COMMIT_EVERY:
            self.conn.commit()
            self.pending = 0

    def take(self, statement: Statement) -> None:
        if _TRANSACTION.fullmatch(statement.code):
            return
        try:
            table = named_table(statement)
            if table is not None:
                kind = classify_table_statement(statement, table)
                if kind.skip:
                    return
                self.loaded.tables += kind.verb == "create-table"
                self.loaded.rows += kind.verb == "insert"
                self.run(statement)
            elif statement.code[:3].upper() == b"SET":
                check_set(statement)
                self.run(statement)
            elif not classify_routines_statement(statement, triggers=True).skip:
                self.loaded.objects.append(statement)
        except UnsafeStatementError as exc:
            raise self.refused(str(exc)) from None


def load_db_sql(chunks: Iterable[bytes], admin: DbTarget, database: str, where: str) -> Loaded:
    """Load the db.sql streamed as ``chunks`` into the empty ``database`` (``where`` names
    the archive in messages); views and triggers are created once every row is in."""
    version = version_number(server_version(admin)) or None
    splitter = Splitter(version) if version else Splitter()
    with accounts.load_account(admin, database) as account, \
            contextlib.closing(open_session(account)) as conn:
        load = _Load(conn, where)
        for line in lines_of(chunks, where):
            for statement in splitter.feed(line):
                load.take(statement)
        try:
            tail = splitter.finish()
        except UnsafeStatementError as exc:
            raise load.refused(str(exc)) from None
        for statement in tail:
            load.take(statement)
        conn.commit()
    with connect(admin.with_database(database)) as conn:
        creating = _Load(conn, where)
        for statement in load.loaded.objects:
            creating.run(Statement(statement.raw, with_definer(statement, "CURRENT_USER"),
                                   statement.line))
        conn.commit()
    return load.loaded
