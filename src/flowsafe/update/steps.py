"""ITFlow's updater commands, one after another in the site's folder, as the account that
may run them: each line of output is shown as it comes and kept in a 0600 transcript.

A command is split like a shell line but run without a shell (``[sites.NAME.update]
commands``), in a process group of its own that is killed if it outlives the timeout.
"""

from __future__ import annotations

import os
import shlex
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from flowsafe import execute
from flowsafe.errors import FlowsafeError
from flowsafe.local_users import Account
from flowsafe.secret import private_dirs

STEP_TIMEOUT = 3600.0

SayFn = Callable[[str], None]


class StepFailed(FlowsafeError):
    """An update step failed; ``index`` says which (0-based among the commands)."""

    def __init__(self, index: int, what: str, why: str) -> None:
        self.index = index
        self.what = what
        self.why = why
        super().__init__(f"{what}: {why}")


@contextmanager
def transcript(path: Path, say: SayFn) -> Iterator[SayFn]:
    """A ``say`` that also appends each line to ``path`` (created 0600)."""
    private_dirs(path.parent)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        def both(line: str) -> None:
            os.write(fd, (line + "\n").encode("utf-8", "replace"))
            say(line)

        yield both
    finally:
        os.close(fd)


def run_commands(commands: Sequence[str], folder: Path, account: Account, say: SayFn,
                 timeout: float = STEP_TIMEOUT) -> None:
    """Run each command; ``StepFailed`` at the first that fails or hangs."""
    for index, line in enumerate(commands):
        say(f"$ {line}    (as {account.name}, in {folder})")

        def show(stream: str, text: str) -> None:
            say(f"  {text}" if stream == "stdout" else f"! {text}")

        try:
            done = execute.run_lines(shlex.split(line), on_line=show, timeout=timeout,
                                     cwd=str(folder), account=account)
        except (FlowsafeError, OSError) as exc:  # not installed, cannot start
            raise StepFailed(index, line, str(exc)) from None
        if done.timed_out:
            raise StepFailed(index, line, f"did not finish within {timeout:g} s; it was "
                                          "killed with its process group")
        if done.code != 0:
            said = f": {done.stderr_tail}" if done.stderr_tail else ""
            raise StepFailed(index, line, f"exit code {done.code}{said}")
