"""A drill's checks as named lines (ok / failed / skipped, detail, time)."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

from flowsafe.errors import FlowsafeError

log = logging.getLogger(__name__)

Result = Literal["ok", "failed", "skipped"]


class CheckFailed(Exception):
    """A check found a problem; the message is the report's detail."""


class Skip(Exception):
    """A check does not apply (no key, no PHP); the message says why."""


@dataclass(frozen=True)
class Check:
    """One line of the report."""

    name: str
    result: Result
    detail: str
    seconds: float


@dataclass
class DrillReport:
    """Everything a drill found; ``ok`` when no check failed."""

    site: str
    snapshot_id: str
    snapshot_time: datetime
    started: datetime
    checks: list[Check] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0
    kept: str | None = None

    def note(self, text: str) -> None:
        """Something the report should say that is not a check's result."""
        self.notes.append(text)

    @property
    def ok(self) -> bool:
        return all(c.result != "failed" for c in self.checks)

    def failed(self) -> list[str]:
        return [c.name for c in self.checks if c.result == "failed"]

    def run(self, name: str, check: Callable[[], str], *, needs: tuple[str, ...] = ()) -> bool:
        """Run one check and record its line; skipped when a check it needs did not pass."""
        blocked = [c.name for c in self.checks if c.name in needs and c.result != "ok"]
        if blocked:
            self.checks.append(Check(name, "skipped", f"needs '{blocked[0]}'", 0.0))
            return False
        started = time.monotonic()
        try:
            detail, result = check(), "ok"
        except Skip as why:
            detail, result = str(why), "skipped"
        except (CheckFailed, FlowsafeError) as problem:
            detail, result = str(problem), "failed"
        seconds = time.monotonic() - started
        log.debug("drill check %s: %s (%s)", name, result, detail)
        self.checks.append(Check(name, result, detail, seconds))  # type: ignore[arg-type]
        return result == "ok"
