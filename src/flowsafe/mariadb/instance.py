"""Throwaway private MariaDB servers: start on a temp datadir, socket and port; stop by PID.

The server is tied to flowsafe's lifetime (it dies with us, see execute.py)
and its folder carries our PID, so a later run removes what a killed run left.
"""

from __future__ import annotations

import logging
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pymysql

from flowsafe import execute, scratch
from flowsafe.errors import FlowsafeError
from flowsafe.mariadb.connection import DbTarget

log = logging.getLogger(__name__)

PREFIX = "flowsafe-mariadb-"
START_TIMEOUT = 60.0
STOP_TIMEOUT = 30.0


@dataclass
class PrivateServer:
    """A running private server; connect as root over ``socket``."""

    folder: Path
    socket: str
    port: int
    process: subprocess.Popen[bytes]

    @property
    def pid(self) -> int:
        return self.process.pid

    def target(self, database: str = "") -> DbTarget:
        return DbTarget(database=database, host="localhost", socket=self.socket, user="root")

    def error_log(self) -> str:
        path = self.folder / "error.log"
        return path.read_text(errors="replace") if path.exists() else ""


def free_port(wanted: int = 0, what: str = "a private MariaDB") -> int:
    """``wanted`` if nothing listens on it on 127.0.0.1 (0: any free port)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind(("127.0.0.1", wanted))
        except OSError as exc:
            place = f"port {wanted}" if wanted else "a free port"
            raise FlowsafeError(
                f"cannot use {place} on 127.0.0.1 for {what}: {exc.strerror}; free it or "
                "configure another port (0 = any)"
            ) from None
        return int(sock.getsockname()[1])


SOCKET_LINK = "socket.dir"  # names the short folder holding the socket, when there is one
MAX_SOCKET_PATH = 100  # Unix socket paths are limited to 107 bytes


def socket_path(folder: Path) -> Path:
    """The server's socket: in its folder, or, when that path is too long for a Unix
    socket, in a short folder under /tmp that the server's folder names (for cleanup)."""
    inside = folder / "mysqld.sock"
    if len(str(inside)) <= MAX_SOCKET_PATH:
        return inside
    short = Path(tempfile.mkdtemp(prefix="flowsafe-sock-", dir="/tmp"))
    (folder / SOCKET_LINK).write_text(str(short))
    return short / "mysqld.sock"


def _remove(folder: Path) -> None:
    """Remove a server folder and its short socket folder, if it had one."""
    link = folder / SOCKET_LINK
    if link.exists():
        shutil.rmtree(link.read_text().strip(), ignore_errors=True)
    shutil.rmtree(folder, ignore_errors=True)


def _server_argv(folder: Path, sock: Path, port: int, fast: bool) -> list[str]:
    argv = [
        "mariadbd",
        "--no-defaults",
        f"--datadir={folder / 'data'}",
        f"--socket={sock}",
        f"--port={port}",
        "--bind-address=127.0.0.1",
        f"--pid-file={folder / 'mariadbd.pid'}",
        f"--log-error={folder / 'error.log'}",
        f"--tmpdir={folder}",
        "--character-set-server=utf8mb4",
        "--collation-server=utf8mb4_general_ci",
        "--skip-name-resolve",
        "--skip-log-bin",
        "--innodb-buffer-pool-size=512M",
        "--innodb-log-file-size=512M",
        "--max-allowed-packet=256M",
    ]
    if fast:
        argv += ["--innodb-flush-log-at-trx-commit=0", "--innodb-doublewrite=0", "--skip-sync-frm"]
    if os.geteuid() == 0:
        argv.append("--user=root")
    return argv


def _wait_ready(server: PrivateServer) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise FlowsafeError(
                f"private MariaDB exited at start (code {server.process.returncode}): "
                f"{execute.tail(server.error_log())}"
            )
        try:
            pymysql.connect(unix_socket=server.socket, user="root", connect_timeout=2).close()
            return
        except pymysql.err.OperationalError:
            time.sleep(0.1)
    raise FlowsafeError(f"private MariaDB did not start within {START_TIMEOUT:.0f} s")


@contextmanager
def private_server(
    parent: Path | None = None, *, fast: bool = True, port: int = 0, keep: bool = False
) -> Iterator[PrivateServer]:
    """Start a private MariaDB under ``parent`` (default: the system temp dir); stop it after.

    With ``keep``, a server whose block ended without an error is left running (it then
    outlives flowsafe; its folder is marked so that no later run removes it).
    """
    execute.require("mariadbd")
    parent = parent or Path(tempfile.gettempdir())
    scratch.clean_stale(parent, PREFIX, _remove)
    folder = scratch.make(parent, PREFIX)
    server: PrivateServer | None = None
    kept = False
    try:
        install = ["mariadb-install-db", "--no-defaults", f"--datadir={folder / 'data'}",
                   "--auth-root-authentication-method=normal", "--skip-test-db"]
        if os.geteuid() == 0:
            install.append("--user=root")
        execute.run(install, hint="could not create a private MariaDB data folder")
        chosen = free_port(port)
        sock = socket_path(folder)
        process = execute.spawn(
            _server_argv(folder, sock, chosen, fast), stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL, die_with_parent=not keep,
        )
        server = PrivateServer(folder, str(sock), chosen, process)
        _wait_ready(server)
        log.debug("private MariaDB pid %s on %s", server.pid, server.socket)
        yield server
        if keep:
            scratch.keep(folder, str(server.pid))
            kept = True
    finally:
        if not kept:
            if server is not None:
                execute.stop(server.process, timeout=STOP_TIMEOUT)
            _remove(folder)
