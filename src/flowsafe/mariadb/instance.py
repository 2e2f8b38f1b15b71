"""Throwaway private MariaDB servers: start on a temp datadir, socket and port; stop by PID.

The server is tied to flowsafe's lifetime (it dies with us, see execute.py)
and its folder carries our PID, so a later run removes what a killed run left.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pymysql

from flowsafe import execute
from flowsafe.errors import FlowsafeError
from flowsafe.mariadb.connection import DbTarget

log = logging.getLogger(__name__)

OWNER_FILE = "flowsafe.owner"
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


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind(("127.0.0.1", 0))
        except OSError as exc:
            raise FlowsafeError(
                f"no free TCP port on 127.0.0.1 for a private MariaDB: {exc.strerror}"
            ) from None
        return int(sock.getsockname()[1])


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def clean_stale(parent: Path) -> list[Path]:
    """Remove private-server folders under ``parent`` whose owning flowsafe is gone."""
    removed: list[Path] = []
    if not parent.is_dir():
        return removed
    for folder in parent.glob(PREFIX + "*"):
        owner = folder / OWNER_FILE
        try:
            pid = int(owner.read_text().split()[0])
        except (OSError, ValueError, IndexError):
            pid = 0
        if pid and _pid_alive(pid):
            continue
        server_pid = folder / "mariadbd.pid"
        if server_pid.exists():
            with contextlib.suppress(ValueError, ProcessLookupError, PermissionError):
                os.kill(int(server_pid.read_text().strip()), signal.SIGKILL)
        shutil.rmtree(folder, ignore_errors=True)
        removed.append(folder)
    return removed


def _server_argv(folder: Path, port: int, fast: bool) -> list[str]:
    argv = [
        "mariadbd",
        "--no-defaults",
        f"--datadir={folder / 'data'}",
        f"--socket={folder / 'mysqld.sock'}",
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
def private_server(parent: Path | None = None, *, fast: bool = True) -> Iterator[PrivateServer]:
    """Start a private MariaDB under ``parent`` (default: the system temp dir); stop it after."""
    execute.require("mariadbd")
    parent = parent or Path(tempfile.gettempdir())
    parent.mkdir(parents=True, exist_ok=True)
    clean_stale(parent)
    folder = Path(tempfile.mkdtemp(prefix=PREFIX, dir=parent))
    (folder / OWNER_FILE).write_text(f"{os.getpid()}\n")
    server: PrivateServer | None = None
    try:
        install = ["mariadb-install-db", "--no-defaults", f"--datadir={folder / 'data'}",
                   "--auth-root-authentication-method=normal", "--skip-test-db"]
        if os.geteuid() == 0:
            install.append("--user=root")
        execute.run(install, hint="could not create a private MariaDB data folder")
        port = free_port()
        process = execute.spawn(
            _server_argv(folder, port, fast), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        server = PrivateServer(folder, str(folder / "mysqld.sock"), port, process)
        _wait_ready(server)
        log.debug("private MariaDB pid %s on %s", server.pid, server.socket)
        yield server
    finally:
        if server is not None:
            execute.stop(server.process, timeout=STOP_TIMEOUT)
        shutil.rmtree(folder, ignore_errors=True)
