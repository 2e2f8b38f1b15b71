"""A site's hooks around each backup: ``before_backup``, ``after_backup``, ``on_error``.

Each hook is the admin's own shell line (``[sites.NAME.hooks]``), run by /bin/sh as
root in a process group of its own, killed with that group at ``timeout_seconds``.
It gets ``FLOWSAFE_SITE``, ``FLOWSAFE_HOOK``, ``FLOWSAFE_REASON``,
``FLOWSAFE_SNAPSHOT`` and ``FLOWSAFE_RESULT`` (``started``, ``ok``, ``failed``; plus
``FLOWSAFE_ERROR``) in its environment. Its output is logged as it is (logger
``flowsafe.hooks``, shown on stderr): hooks are the admin's, flowsafe does not filter
them. A failing ``before_backup`` stops that backup; a failing ``after_backup`` fails
the run although the snapshot is stored; ``on_error`` runs when either the backup or
a hook failed, and its own failure is only logged.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from flowsafe import execute
from flowsafe.config import Hooks
from flowsafe.errors import FlowsafeError

log = logging.getLogger(__name__)

SHELL = "/bin/sh"


class HookError(FlowsafeError):
    """A hook exited non-zero or hung."""


@dataclass
class BackupHooks:
    """What the hooks of one backup know; the caller sets ``snapshot`` once it exists."""

    hooks: Hooks
    site: str
    reason: str
    snapshot: str | None = None

    def run(self, name: str, line: str, result: str, error: str = "") -> None:
        """Run the hook called ``name`` (its shell ``line``), if it is not empty;
        ``HookError`` when it fails or hangs."""
        if not line.strip():
            return
        env = {"FLOWSAFE_SITE": self.site, "FLOWSAFE_HOOK": name,
               "FLOWSAFE_REASON": self.reason, "FLOWSAFE_SNAPSHOT": self.snapshot or "",
               "FLOWSAFE_RESULT": result}
        if error:
            env["FLOWSAFE_ERROR"] = error

        def show(stream: str, text: str) -> None:
            log.info("%s %s: %s", self.site, name, text)

        timeout = self.hooks.timeout_seconds
        done = execute.run_lines([SHELL, "-c", line], on_line=show, timeout=timeout, env=env)
        if done.timed_out:
            raise HookError(f"the {name} hook of site '{self.site}' did not finish within "
                            f"{timeout:g} s: killed it with its process group; make it "
                            "faster or raise timeout_seconds under "
                            f"[sites.{self.site}.hooks]")
        if done.code != 0:
            said = f": {done.stderr_tail}" if done.stderr_tail else ""
            raise HookError(f"the {name} hook of site '{self.site}' failed (exit code "
                            f"{done.code}){said}")


@contextmanager
def around_backup(hooks: Hooks, site: str, reason: str) -> Iterator[BackupHooks]:
    """``before_backup`` now, ``after_backup`` when the block ends well, ``on_error`` when
    the block, or one of those hooks, raised (the error is raised on)."""
    run = BackupHooks(hooks, site, reason)
    try:
        try:
            run.run("before_backup", hooks.before_backup, "started")
        except HookError as exc:
            raise HookError(f"{exc}; the backup of site '{site}' did not run") from None
        yield run
        try:
            run.run("after_backup", hooks.after_backup, "ok")
        except HookError as exc:
            raise HookError(f"the backup is stored (snapshot {(run.snapshot or '')[:8]}), "
                            f"but {exc}") from None
    except Exception as exc:
        try:
            run.run("on_error", hooks.on_error, "failed", str(exc))
        except HookError as also:
            log.error("%s", also)
        raise
