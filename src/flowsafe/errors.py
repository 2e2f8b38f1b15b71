"""The error hierarchy and the documented exit codes.

Only the CLI catches these: it prints ``str(error)`` on one line and exits with
``error.exit_code``. Every message says what went wrong and what to do next.
"""

from __future__ import annotations

import signal

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_VERIFY = 3


def exit_status(code: int) -> str:
    """A child's exit status in words: ``exit code 3``, or ``killed by SIGKILL``."""
    if code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exit code {code}"


class FlowsafeError(Exception):
    """Base class: a failure flowsafe can explain. Exit code 1."""

    exit_code = EXIT_FAILED

    def also(self, consequence: str) -> FlowsafeError:
        """This error, its message followed by what it means where it was caught."""
        self.args = (f"{self}; {consequence}",)
        return self


class ConfigError(FlowsafeError):
    """Bad configuration, bad arguments or a missing prerequisite. Exit code 2."""

    exit_code = EXIT_USAGE


class ToolMissingError(ConfigError):
    """An external program flowsafe needs is not installed (or too old)."""


class LockedError(FlowsafeError):
    """Another flowsafe run holds the site's lock."""


class ToolError(FlowsafeError):
    """An external program failed; carries the last lines of its stderr."""

    def __init__(self, tool: str, code: int, stderr_tail: str, hint: str = "") -> None:
        self.tool = tool
        self.code = code
        self.stderr_tail = stderr_tail
        self.hint = hint
        detail = f": {stderr_tail}" if stderr_tail else ""
        if code < 0 and not hint:  # killed from outside: an admin, the out-of-memory killer
            hint = "something killed it: run the command again; if it recurs, look for the "\
                "out-of-memory killer in `dmesg`"
        message = f"{tool} failed ({exit_status(code)}){detail}"
        if hint:
            message += f" ({hint})"
        super().__init__(message)


class VerificationError(FlowsafeError):
    """A check found that a backup is not what it should be. Exit code 3."""

    exit_code = EXIT_VERIFY
