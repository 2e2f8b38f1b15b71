"""Throwaway private MariaDB servers: a temp datadir, a socket only root can reach, stopped by PID.

What a drill restores is a copy of the site's secrets, so the server is closed to
every other local user: no TCP (``--skip-networking``); its socket in a folder
only its own user (and, for the drill's PHP check, one chosen group) may enter;
``root`` only over that socket by unix_socket authentication (OS root, that is
flowsafe), every other account dropped; ``mariadbd`` runs as the ``mysql`` user;
``secure_file_priv`` is an empty private folder, so ``INTO OUTFILE`` and
``LOAD_FILE`` reach nothing else.

The server is tied to flowsafe's lifetime (it dies with us, see execute.py) and its
folder carries our PID, so a later run removes what a killed run left.
"""

from __future__ import annotations

import grp
import logging
import os
import pwd
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

from flowsafe import execute, scratch
from flowsafe.errors import FlowsafeError, exit_status
from flowsafe.local_users import Account
from flowsafe.mariadb.connection import DbTarget
from flowsafe.secret import private_dirs

log = logging.getLogger(__name__)

PREFIX = "flowsafe-mariadb-"
START_TIMEOUT = 60.0
STOP_TIMEOUT = 30.0
SERVER_USER = "mysql"
DEFAULT_PACKET = 256 << 20
SOCKET_LINK = "socket.dir"  # names the short folder holding the socket, when there is one
MAX_SOCKET_PATH = 100  # Unix socket paths are limited to 107 bytes


@dataclass
class PrivateServer:
    """A running private server; connect as ``user`` (root) over ``socket``."""

    folder: Path
    socket: str
    user: str
    process: subprocess.Popen[bytes]

    @property
    def pid(self) -> int:
        return self.process.pid

    def target(self, database: str = "") -> DbTarget:
        return DbTarget(database=database, host="localhost", socket=self.socket, user=self.user)

    def error_log(self) -> str:
        path = self.folder / "data" / "error.log"
        return path.read_text(errors="replace") if path.exists() else ""


def servers_folder(state_dir: Path) -> Path:
    """Where flowsafe's private servers live below its state folder. The state folder is
    flowsafe's own (restic may have made it 0700): the servers' user may pass through it
    (o+x: enter, never list)."""
    private_dirs(state_dir)
    info = state_dir.stat()
    if info.st_uid == os.geteuid() and not info.st_mode & 0o001:
        os.chmod(state_dir, (info.st_mode & 0o7777) | 0o011)
    return state_dir / "servers"


def free_port(wanted: int = 0, what: str = "a private server") -> int:
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


def _owner() -> tuple[str, int, int]:
    """Who runs the server: ``mysql`` when flowsafe is root, else flowsafe's own user."""
    account = pwd.getpwnam(SERVER_USER) if os.geteuid() == 0 else pwd.getpwuid(os.geteuid())
    return account.pw_name, account.pw_uid, account.pw_gid


def _private(path: Path, uid: int, gid: int, mode: int) -> Path:
    path.mkdir(mode=0o700, exist_ok=True)
    if os.geteuid() == 0:
        os.chown(path, uid, gid)
    os.chmod(path, mode)
    return path


def _check_reachable(parent: Path, uid: int) -> None:
    """The server's own user must pass through every folder above its datadir."""
    for folder in parent.absolute().parents:
        info = folder.stat()
        if not (info.st_mode & 0o001 or info.st_uid == uid):
            raise FlowsafeError(
                f"the private MariaDB runs as '{SERVER_USER}', which cannot pass through "
                f"{folder} (mode {info.st_mode & 0o777:o}) to its folder in {parent}: allow it "
                f"(chmod o+x {folder}) or move state_dir to a folder it can reach")


def _socket_folder(folder: Path, uid: int, gid: int) -> Path:
    """The socket's folder: inside the server folder, or, when that path is too long for a
    Unix socket, a short one under /tmp that the server folder names (for cleanup)."""
    inside = folder / "run"
    if len(str(inside / "mysqld.sock")) <= MAX_SOCKET_PATH:
        return _private(inside, uid, gid, 0o700)
    short = Path(tempfile.mkdtemp(prefix="flowsafe-sock-", dir="/tmp"))
    (folder / SOCKET_LINK).write_text(str(short))
    return _private(short, uid, gid, 0o700)


def _remove(folder: Path) -> None:
    """Remove a server folder and its short socket folder, if it had one."""
    link = folder / SOCKET_LINK
    if link.exists():
        shutil.rmtree(link.read_text().strip(), ignore_errors=True)
    shutil.rmtree(folder, ignore_errors=True)


def _server_argv(folder: Path, sock: Path, fast: bool, packet: int) -> list[str]:
    data = folder / "data"
    argv = [
        "mariadbd",
        "--no-defaults",
        f"--datadir={data}",
        f"--socket={sock}",
        "--skip-networking",
        f"--pid-file={data / 'mariadbd.pid'}",
        f"--log-error={data / 'error.log'}",
        f"--tmpdir={folder / 'tmp'}",
        f"--secure-file-priv={folder / 'files'}",
        "--character-set-server=utf8mb4",
        "--collation-server=utf8mb4_general_ci",
        "--skip-name-resolve",
        "--skip-log-bin",
        "--innodb-buffer-pool-size=512M",
        "--innodb-log-file-size=512M",
        f"--max-allowed-packet={packet}",
        "--local-infile=0",
    ]
    if fast:
        argv += ["--innodb-flush-log-at-trx-commit=0", "--innodb-doublewrite=0", "--skip-sync-frm"]
    return argv


def _wait_ready(server: PrivateServer) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            code = server.process.returncode
            log_tail = execute.tail(server.error_log())
            raise FlowsafeError(
                f"private MariaDB exited at start ({exit_status(code)})"
                + (f": {log_tail}" if log_tail else ": its error log is empty")
            )
        try:
            pymysql.connect(unix_socket=server.socket, user=server.user,
                            connect_timeout=2).close()
            return
        except pymysql.err.OperationalError:
            time.sleep(0.1)
    raise FlowsafeError(f"private MariaDB did not start within {START_TIMEOUT:.0f} s")


def _only_root(server: PrivateServer) -> None:
    """Drop every account but the one flowsafe uses (and MariaDB's own mariadb.sys)."""
    with pymysql.connect(unix_socket=server.socket, user=server.user) as conn, \
            conn.cursor() as cur:
        cur.execute("SELECT User, Host FROM mysql.global_priv WHERE NOT (User = %s AND Host = "
                    "'localhost') AND User <> 'mariadb.sys'", (server.user,))
        for user, host in cur.fetchall():
            cur.execute("DROP USER %s@%s", (user, host))


@contextmanager
def private_server(
    parent: Path | None = None, *, fast: bool = True, keep: bool = False,
    packet: int = DEFAULT_PACKET, client_group: str | None = None,
) -> Iterator[PrivateServer]:
    """Start a private MariaDB under ``parent`` (default: the system temp dir); stop it after.

    ``packet`` is its max_allowed_packet; ``client_group`` may also enter the socket's
    folder (the group PHP runs as, for the drill's login check; clients still need an
    account). With ``keep``, a server whose block ended without an error is left running
    (it then outlives flowsafe; its folder is marked so that no later run removes it).
    """
    execute.require("mariadbd")
    parent = parent or Path(tempfile.gettempdir())
    user, uid, gid = _owner()
    parent.mkdir(parents=True, exist_ok=True)
    os.chmod(parent, 0o711)  # a folder of private servers: passed through, never listed
    _check_reachable(parent, uid)
    scratch.clean_stale(parent, PREFIX, _remove)
    folder = scratch.make(parent, PREFIX)
    os.chmod(folder, 0o711)  # the server's own user must pass through to its folders
    server: PrivateServer | None = None
    kept = False
    try:
        for name in ("data", "tmp", "files"):
            _private(folder / name, uid, gid, 0o700)
        sockets = _socket_folder(folder, uid, gid)
        if client_group is not None:
            os.chown(sockets, uid, grp.getgrnam(client_group).gr_gid)
            os.chmod(sockets, 0o710)
        install = ["mariadb-install-db", "--no-defaults", f"--datadir={folder / 'data'}",
                   "--auth-root-authentication-method=socket", "--skip-test-db"]
        if os.geteuid() == 0:
            install.append(f"--user={user}")
        else:
            install.append(f"--auth-root-socket-user={user}")
        execute.run(install, hint="could not create a private MariaDB data folder")
        sock = sockets / "mysqld.sock"
        # Started as its user, not with --user: a server that switches user itself loses
        # the signal that makes it die with flowsafe (the kernel clears it on setuid).
        process = execute.spawn(
            _server_argv(folder, sock, fast, packet), stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL, die_with_parent=not keep,
            account=Account.named(user) if os.geteuid() == 0 else None,
        )
        server = PrivateServer(folder, str(sock), "root" if os.geteuid() == 0 else user, process)
        _wait_ready(server)
        _only_root(server)
        log.debug("private MariaDB pid %s on %s", server.pid, server.socket)
        yield server
        if keep:
            scratch.keep(folder, str(server.pid))
            kept = True
    finally:
        if not kept:
            if server is not None:  # its folder goes next: nothing to shut down cleanly
                execute.stop(server.process, signal.SIGKILL, timeout=STOP_TIMEOUT)
            _remove(folder)
