"""What a command did for a site, and what a person is told about it: the event it is
(failure, stale, drill-failure, success), a one-line summary, and the next command to run."""

from __future__ import annotations

import socket
from dataclasses import dataclass

from flowsafe.config import NotifyEvent


@dataclass(frozen=True)
class Outcome:
    """A command finished for a site (backup, copy, prune, drill, status)."""

    site: str
    command: str
    ok: bool
    error: str | None = None
    snapshot_id: str | None = None
    duration: float = 0.0
    bytes_added: int | None = None
    detail: str | None = None  # one line of what happened (a drill's failed checks, ...)
    to: str | None = None  # the destination repository of a copy

    @classmethod
    def failed(cls, site: str, command: str, error: BaseException, duration: float,
               to: str | None = None) -> Outcome:
        return cls(site, command, False, str(error) or type(error).__name__,
                   duration=duration, to=to)

    @property
    def event(self) -> NotifyEvent:
        if self.ok:
            return "success"
        if self.command == "status":
            return "stale"
        return "drill-failure" if self.command == "drill" else "failure"

    @property
    def what(self) -> str:
        return f"{self.command} to '{self.to}'" if self.to else self.command

    def summary(self) -> str:
        """One line: what ran, for which site, and how it ended."""
        if not self.ok:
            return f"{self.what} of site '{self.site}' FAILED: {self.error or self.detail}"
        parts = [f"{self.what} of site '{self.site}' ok in {self.duration:.1f} s"]
        if self.snapshot_id:
            parts.append(f"snapshot {self.snapshot_id[:8]}")
        if self.bytes_added is not None:
            parts.append(f"{self.bytes_added} bytes added")
        if self.detail:
            parts.append(self.detail)
        return ", ".join(parts)

    def next_command(self) -> str:
        """What to run next (after fixing what the summary names)."""
        site = f"--site {self.site}"
        return {
            "backup": f"flowsafe status {site}, then flowsafe backup {site}",
            "copy": f"flowsafe copy {site}" + (f" --to {self.to}" if self.to else ""),
            "prune": f"flowsafe prune {site} --dry-run",
            "drill": f"flowsafe drill {site} --json (and read the failed checks)",
            "status": f"flowsafe status {site}",
        }.get(self.command, f"flowsafe status {site}")

    def title(self) -> str:
        verdict = {"success": "ok", "stale": "needs attention", "failure": "FAILED",
                   "drill-failure": "drill FAILED"}[self.event]
        return f"flowsafe on {socket.gethostname()}: {self.what} of '{self.site}' {verdict}"

    def body(self) -> str:
        lines = [self.summary()]
        if not self.ok:
            lines.append(f"Next: {self.next_command()}")
        return "\n".join(lines)
