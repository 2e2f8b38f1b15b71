"""The one place where flowsafe runs other programs.

Every child gets ``PR_SET_PDEATHSIG`` = SIGKILL, so no restic, mariadb-dump or
mariadbd outlives flowsafe, even after ``kill -9``. Argv is logged at DEBUG
(argv never carries secrets: they travel in files and pipes). A failure raises
``ToolError`` with the last lines of the child's stderr.
"""

from __future__ import annotations

import ctypes
import logging
import os
import shutil
import signal
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from flowsafe.errors import ToolError, ToolMissingError

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
}


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
) -> subprocess.Popen[bytes]:
    """Start a child that dies with flowsafe (unless told otherwise); the caller streams
    and waits. A child that must outlive flowsafe gets a session of its own."""
    program = require(argv[0])
    log.debug("run: %s", " ".join(argv))
    return subprocess.Popen(
        [program, *argv[1:]],
        stdin=stdin,
        stdout=stdout,
        stderr=stderr,
        env=child_env(env),
        pass_fds=tuple(pass_fds),
        cwd=cwd,
        preexec_fn=_die_with_parent if die_with_parent else None,
        start_new_session=not die_with_parent,
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
) -> Result:
    """Run a child to completion; raise ``ToolError`` on a non-zero exit if ``check``."""
    process = spawn(
        argv,
        env=env,
        stdin=subprocess.PIPE if input is not None else subprocess.DEVNULL,
        pass_fds=pass_fds,
        cwd=cwd,
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
