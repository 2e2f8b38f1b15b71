"""The one place where flowsafe runs other programs.

Every child gets ``PR_SET_PDEATHSIG`` = SIGKILL, so no restic, mariadb-dump, mariadbd
or php outlives flowsafe, even after ``kill -9``. The kernel clears that signal when a
process changes user, so a child that must run as another user is started as that user
here (``account``), never left to switch itself (``mariadbd --user``). Argv is logged at DEBUG
(argv never carries secrets: they travel in files and pipes). A failure raises
``ToolError`` with the last lines of the child's stderr. A child may run as another
local account (with a clean environment), and ``run_lines`` runs one in its own
process group, streaming its output lines and killing the whole group at a timeout
(hooks, ITFlow's updater).
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from queue import Empty, Queue
from typing import IO

from flowsafe.errors import ToolError, ToolMissingError
from flowsafe.local_users import Account

log = logging.getLogger(__name__)

_PR_SET_PDEATHSIG = 1
_libc = ctypes.CDLL(None, use_errno=True)

INSTALL_HINTS = {
    "restic": "install restic 0.14 or newer: apt-get install restic",
    "mariadb-dump": "install the MariaDB client: apt-get install mariadb-client",
    "mariadb": "install the MariaDB client: apt-get install mariadb-client",
    "mariadbd": "install the MariaDB server: apt-get install mariadb-server",
    "mariadb-install-db": "install the MariaDB server: apt-get install mariadb-server",
    "php": "install PHP: apt-get install php-cli php-mysql",
    "git": "install git: apt-get install git",
    "systemctl": "install systemd: apt-get install systemd",
    "systemd-analyze": "install systemd: apt-get install systemd",
}
KILL_GRACE = 5.0  # seconds between SIGTERM and SIGKILL of a timed-out process group


def _die_with_parent() -> None:
    _libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


def require(program: str) -> str:
    """Return the full path of ``program`` or raise an error saying how to install it."""
    found = shutil.which(program)
    if found is None:
        hint = INSTALL_HINTS.get(program, f"install {program}")
        raise ToolMissingError(f"{program} is not installed or not on PATH: {hint}")
    return found


def tail(text: bytes | str, lines: int = 5) -> str:
    """The last non-empty lines of a child's output, joined for one-line messages."""
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    kept = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return " | ".join(kept[-lines:])


def child_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment for a child: ours, plus what only that child needs."""
    env = dict(os.environ)
    if extra:
        env.update(extra)
    return env


def spawn(
    argv: Sequence[str],
    *,
    env: Mapping[str, str] | None = None,
    stdin: int | None = subprocess.DEVNULL,
    stdout: int | None = subprocess.PIPE,
    stderr: int | None = subprocess.PIPE,
    pass_fds: Sequence[int] = (),
    cwd: str | None = None,
    die_with_parent: bool = True,
    account: Account | None = None,
    new_group: bool = False,
) -> subprocess.Popen[bytes]:
    """Start a child that dies with flowsafe (unless told otherwise); the caller streams
    and waits. A child that must outlive flowsafe gets a session of its own.

    With ``account`` the child runs as that user (its groups, an environment of its own
    plus ``env``); with ``new_group`` it leads a process group of its own."""
    program = require(argv[0])
    log.debug("run%s: %s", f" as {account.name}" if account else "", " ".join(argv))
    environment = {**account.environment(), **(env or {})} if account else child_env(env)
    return subprocess.Popen(
        [program, *argv[1:]],
        stdin=stdin,
        stdout=stdout,
        stderr=stderr,
        env=environment,
        pass_fds=tuple(pass_fds),
        cwd=cwd,
        preexec_fn=_die_with_parent if die_with_parent else None,
        start_new_session=not die_with_parent,
        process_group=0 if new_group and die_with_parent else None,
        user=account.uid if account else None,
        group=account.gid if account else None,
        extra_groups=list(account.groups) if account else None,
    )


@dataclass(frozen=True)
class Result:
    """What a finished child left behind."""

    code: int
    stdout: bytes
    stderr: bytes


def run(
    argv: Sequence[str],
    *,
    env: Mapping[str, str] | None = None,
    input: bytes | None = None,
    pass_fds: Sequence[int] = (),
    check: bool = True,
    hint: str = "",
    cwd: str | None = None,
    account: Account | None = None,
) -> Result:
    """Run a child to completion; raise ``ToolError`` on a non-zero exit if ``check``."""
    process = spawn(
        argv,
        env=env,
        stdin=subprocess.PIPE if input is not None else subprocess.DEVNULL,
        pass_fds=pass_fds,
        cwd=cwd,
        account=account,
    )
    try:
        stdout, stderr = process.communicate(input)
    except BaseException:
        process.kill()
        process.wait()
        raise
    if stderr:
        log.debug("%s stderr: %s", argv[0], tail(stderr, 20))
    if check and process.returncode != 0:
        raise ToolError(argv[0], process.returncode, tail(stderr), hint)
    return Result(process.returncode, stdout, stderr)


def stop(
    process: subprocess.Popen[bytes], sig: int = signal.SIGTERM, timeout: float = 30.0
) -> None:
    """Ask a child to stop with ``sig``; SIGKILL it if it has not exited after ``timeout``."""
    if process.poll() is not None:
        return
    process.send_signal(sig)
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@dataclass(frozen=True)
class Streamed:
    """How a streamed child ended: its exit code (None: killed at the timeout) and the
    last lines it wrote to stderr."""

    code: int | None
    stderr_tail: str

    @property
    def timed_out(self) -> bool:
        return self.code is None


LineFn = Callable[[str, str], None]  # (stream name "stdout"/"stderr", line without newline)


def _pump(stream: IO[bytes], name: str, lines: Queue[tuple[str, str | None]]) -> None:
    for raw in iter(stream.readline, b""):
        lines.put((name, raw.decode("utf-8", "replace").rstrip("\r\n")))
    lines.put((name, None))


def kill_group(process: subprocess.Popen[bytes], grace: float = KILL_GRACE) -> None:
    """SIGTERM the child's process group, then SIGKILL what is left of it after ``grace``
    seconds (a member that ignores SIGTERM dies too)."""
    try:
        os.killpg(process.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(grace)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait()


def run_lines(
    argv: Sequence[str],
    *,
    on_line: LineFn,
    timeout: float,
    env: Mapping[str, str] | None = None,
    cwd: str | None = None,
    account: Account | None = None,
) -> Streamed:
    """Run a child in its own process group; pass each line it writes (stdout and stderr)
    to ``on_line`` as it comes; kill the whole group at ``timeout`` seconds."""
    process = spawn(argv, env=env, cwd=cwd, account=account, new_group=True)
    assert process.stdout is not None and process.stderr is not None
    lines: Queue[tuple[str, str | None]] = Queue()
    for pipe, name in ((process.stdout, "stdout"), (process.stderr, "stderr")):
        threading.Thread(target=_pump, args=(pipe, name, lines), daemon=True).start()
    errors: list[str] = []
    deadline = time.monotonic() + timeout
    open_streams = 2
    try:
        while open_streams and time.monotonic() < deadline:
            try:
                name, line = lines.get(timeout=min(0.5, max(0.01, deadline - time.monotonic())))
            except Empty:
                continue
            if line is None:
                open_streams -= 1
            else:
                if name == "stderr":
                    errors = [*errors[-19:], line]
                on_line(name, line)
        if not open_streams:
            try:
                process.wait(max(0.0, deadline - time.monotonic()))
                return Streamed(process.returncode, tail("\n".join(errors)))
            except subprocess.TimeoutExpired:
                pass
        kill_group(process)
        return Streamed(None, tail("\n".join(errors)))
    except BaseException:
        kill_group(process, grace=0.5)
        raise
