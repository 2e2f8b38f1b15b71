"""The ``mariadb`` command-line client, for SQL that flowsafe itself writes (the sample site).

It always runs with ``--sandbox`` (MariaDB refuses ``\\!``, ``\\.``, ``source``,
``system`` in that mode) and ``--`` before the database name; credentials travel
in an option file on a pipe. Dumps are never loaded through it: see ``load.py``.
"""

from __future__ import annotations

import contextlib
import subprocess
import tempfile
from collections.abc import Callable, Sequence
from typing import IO

from flowsafe import execute
from flowsafe.errors import ToolError
from flowsafe.mariadb.connection import DbTarget, client_options


def _error_lines(stderr: bytes) -> str:
    """The client's ERROR lines only: it may echo the failing statement, and rows can hold
    secrets (ITFlow keeps SMTP and API passwords in plain text)."""
    lines = [line for line in stderr.decode("utf-8", "replace").splitlines()
             if line.startswith("ERROR")]
    return execute.tail("\n".join(lines)) if lines else execute.tail(stderr, 1)


def run_client(
    target: DbTarget,
    what: str,
    feed: Callable[[IO[bytes]], object],
    client_args: Sequence[str] = (),
) -> None:
    """Run one ``mariadb`` client on ``target.database`` with ``feed`` writing its stdin.

    The child is killed if ``feed`` raises; a failing child becomes a ``ToolError``
    saying ``what`` was loaded, with its stderr tail.
    """
    with client_options(target) as (option, fd), tempfile.TemporaryFile() as errors:
        child = execute.spawn(
            ["mariadb", option, "--sandbox", *client_args, "--", target.database],
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            stderr=errors.fileno(),
            pass_fds=[fd],
        )
        stdin = child.stdin
        assert stdin is not None
        try:
            try:
                feed(stdin)
                stdin.close()
            except BrokenPipeError:
                pass  # the child stopped reading: its exit code and stderr say why
            code = child.wait()
        except BaseException:
            child.kill()
            child.wait()
            raise
        finally:
            with contextlib.suppress(BrokenPipeError):
                stdin.close()
        if code != 0:
            errors.seek(0)
            raise ToolError("mariadb", code, _error_lines(errors.read()), f"loading {what}")
