"""Where a database is and how to reach it, without putting passwords in argv.

``DbTarget`` names a server, an account and a database. ``connect`` opens a
PyMySQL connection with errors that name host and user (never the password).
``client_options`` hands MariaDB's command-line clients their credentials
through a ``[client]`` option file on a pipe (``--defaults-extra-file=/dev/fd/N``).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pymysql
import pymysql.cursors

from flowsafe.errors import ConfigError, FlowsafeError
from flowsafe.secret import Secret

SOCKET_CANDIDATES = ("/run/mysqld/mysqld.sock", "/var/run/mysqld/mysqld.sock", "/tmp/mysql.sock")


@dataclass(frozen=True)
class DbTarget:
    """A MariaDB server, account and database. ``localhost`` means the Unix socket."""

    database: str
    host: str = "localhost"
    port: int = 3306
    socket: str | None = None
    user: str = "root"
    password: Secret = field(default_factory=lambda: Secret(""))

    @property
    def uses_socket(self) -> bool:
        return self.host == "localhost"

    def socket_path(self) -> str:
        """The socket to use: the configured one, else the first that exists."""
        if self.socket:
            return self.socket
        for candidate in SOCKET_CANDIDATES:
            if Path(candidate).exists():
                return candidate
        return SOCKET_CANDIDATES[0]

    def where(self) -> str:
        """Human description: ``user 'u' at localhost (socket /run/...)``, no password."""
        place = f"localhost (socket {self.socket_path()})" if self.uses_socket else (
            f"{self.host}:{self.port}"
        )
        return f"user '{self.user}' at {place}"

    def with_database(self, database: str) -> DbTarget:
        return replace(self, database=database)


def connect(target: DbTarget, *, database: str | None = None, autocommit: bool = True,
            max_allowed_packet: int = 16 << 20) -> pymysql.Connection[Any]:
    """Open a connection; failures become one-line errors naming host and user."""
    db = target.database if database is None else database
    try:
        return pymysql.connect(
            user=target.user,
            password=target.password.reveal(),
            database=db or None,
            host=None if target.uses_socket else target.host,
            port=target.port,
            unix_socket=target.socket_path() if target.uses_socket else None,
            charset="utf8mb4",
            connect_timeout=10,
            autocommit=autocommit,
            max_allowed_packet=max_allowed_packet,
            # TLS over a Unix socket protects nothing, and PyMySQL's "preferred" mode loads
            # the system's CA certificates for every connection (tens of ms of CPU each)
            ssl_disabled=target.uses_socket,
        )
    except pymysql.err.OperationalError as exc:
        raise explain(exc, target, db) from None


def explain(exc: pymysql.err.MySQLError, target: DbTarget, database: str) -> FlowsafeError:
    """Turn a driver error into a message that says what and what next."""
    code = exc.args[0] if exc.args else 0
    if code == 1045:
        return ConfigError(
            f"MariaDB refused {target.where()}: wrong user or password; check $dbusername "
            "and $dbpassword in config.php, or the [sites.*.database] settings"
        )
    if code == 1049:
        return ConfigError(
            f"database '{database}' does not exist on the server ({target.where()}); "
            "check $database in config.php"
        )
    if code in (1044, 1142, 1227):
        return ConfigError(f"{target.where()} lacks a privilege: {exc.args[1]}")
    if code in (2002, 2003, 2006, 2013):
        return FlowsafeError(
            f"cannot reach MariaDB as {target.where()}: {exc.args[1]}; is the server "
            "running and is the host/socket right?"
        )
    return FlowsafeError(f"MariaDB error for {target.where()}: {exc}")


def _option_value(value: str) -> str:
    """Quote a value for a MySQL option file (backslash and double quote escaped)."""
    escaped = value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'"{escaped}"'


def option_file_text(target: DbTarget) -> str:
    """The ``[client]`` section that carries user, password and server address."""
    lines = ["[client]", f"user={_option_value(target.user)}"]
    lines.append(f"password={_option_value(target.password.reveal())}")
    if target.uses_socket:
        lines.append(f"socket={_option_value(target.socket_path())}")
    else:
        lines += [f"host={_option_value(target.host)}", f"port={target.port}", "protocol=TCP"]
    return "\n".join(lines) + "\n"


@contextmanager
def client_options(target: DbTarget) -> Iterator[tuple[str, int]]:
    """Yield (``--defaults-extra-file=/dev/fd/N``, fd): pass fd to the child, argv first."""
    read_fd, write_fd = os.pipe()
    try:
        os.write(write_fd, option_file_text(target).encode("utf-8"))
    finally:
        os.close(write_fd)
    try:
        yield f"--defaults-extra-file=/dev/fd/{read_fd}", read_fd
    finally:
        os.close(read_fd)


def server_version(target: DbTarget) -> str:
    with connect(target, database="") as conn, conn.cursor() as cur:
        cur.execute("SELECT VERSION()")
        row = cur.fetchone()
    return str(row[0]) if row else "unknown"
