"""SQL text for the sample and the pipe that loads it.

Rows become multi-row ``INSERT`` statements (binary values as hex literals)
streamed into the ``mariadb`` command-line client, which gets its credentials
through ``client_options`` (never argv). This module also creates the site's
database and its own MariaDB account.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterable, Iterator, Sequence
from typing import IO

from flowsafe.errors import ConfigError
from flowsafe.mariadb.client import run_client
from flowsafe.mariadb.connection import DbTarget, connect
from flowsafe.sample.schema import Table

SqlValue = str | int | bytes | None
Row = Sequence[SqlValue]

STATEMENT_CHARS = 1 << 20
SESSION = "SET NAMES utf8mb4;\nSET foreign_key_checks = 0;\nSET unique_checks = 0;\n"
_ESCAPES = (("\\", "\\\\"), ("'", "\\'"), ("\0", "\\0"), ("\n", "\\n"), ("\r", "\\r"),
            ("\x1a", "\\Z"))
_NAME = re.compile(r"[A-Za-z0-9_]{1,64}")


def literal(value: SqlValue) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, bytes):
        return f"X'{value.hex()}'" if value else "''"
    for char, escaped in _ESCAPES:  # str.replace is far faster than str.translate
        if char in value:
            value = value.replace(char, escaped)
    return "'" + value + "'"


def inserts(table: Table, rows: Iterable[Row]) -> Iterator[str]:
    """Multi-row ``INSERT`` statements of about ``STATEMENT_CHARS`` characters each."""
    head = f"INSERT INTO `{table.name}` (`" + "`,`".join(table.column_names) + "`) VALUES\n"
    batch: list[str] = []
    size = 0
    for row in rows:
        values = "(" + ",".join(map(literal, row)) + ")"
        batch.append(values)
        size += len(values)
        if size >= STATEMENT_CHARS:
            yield head + ",\n".join(batch) + ";\n"
            batch, size = [], 0
    if batch:
        yield head + ",\n".join(batch) + ";\n"


def run_sql(target: DbTarget, statements: Iterable[str]) -> None:
    """Stream ``statements`` into the ``mariadb`` client on ``target.database``."""

    def feed(pipe: IO[bytes]) -> None:
        for statement in itertools.chain((SESSION,), statements):
            pipe.write(statement.encode("utf-8"))

    run_client(target, "the sample site", feed,
               client_args=("--default-character-set=utf8mb4", "--batch"))


def check_name(name: str, what: str) -> str:
    if not _NAME.fullmatch(name):
        raise ConfigError(f"{what} {name!r} must be 1-64 letters, digits or underscores")
    return name


def create_database(server: DbTarget, database: str, user: str, password: str) -> None:
    """(Re)create ``database`` empty and give ``user``@localhost all rights on it."""
    check_name(database, "database name")
    with connect(server, database="") as conn, conn.cursor() as cur:
        cur.execute(f"DROP DATABASE IF EXISTS `{database}`")
        cur.execute(
            f"CREATE DATABASE `{database}` CHARACTER SET utf8mb4 COLLATE utf8mb4_general_ci"
        )
        cur.execute("CREATE USER IF NOT EXISTS %s@'localhost' IDENTIFIED BY %s", (user, password))
        cur.execute("ALTER USER %s@'localhost' IDENTIFIED BY %s", (user, password))
        cur.execute(f"GRANT ALL PRIVILEGES ON `{database}`.* TO %s@'localhost'", (user,))
