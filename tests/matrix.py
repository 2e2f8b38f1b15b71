"""The fault matrix's record and its table: one JSON line per (command, fault) pair run by
tests/test_faults.py, and RELIABILITY.md written from them.

``FLOWSAFE_FAULT_RESULTS`` names the results file (default ``.pytest-tmp/fault-results.jsonl``,
which each pytest run starts anew). ``python -m tests.matrix RESULTS OUT`` writes the table.
"""

from __future__ import annotations

import json
import os
import platform
import re
import subprocess
import sys
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

RESULTS_ENV = "FLOWSAFE_FAULT_RESULTS"


@dataclass
class Row:
    """What one command did under one fault, and whether the three invariants held."""

    command: str
    fault: str
    exit: int
    message: str  # the first line of stderr ("(killed)" for a kill -9 of flowsafe)
    left: list[str]  # what the run left behind, before the next run tidied up
    production: bool  # unchanged, or fully at the target state
    repository: bool  # restic check clean, no snapshot of a failed run, next run succeeds
    secrets: bool  # no secret in any argv, foreign environment or output
    expected: bool  # the exit code and message are the documented ones
    problems: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def held(self) -> bool:
        return self.production and self.repository and self.secrets and self.expected


def results_file() -> Path:
    return Path(os.environ.get(RESULTS_ENV) or Path(".pytest-tmp") / "fault-results.jsonl")


def append(row: Row) -> None:
    path = results_file()
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as out:
        out.write(json.dumps({**asdict(row), "held": row.held}) + "\n")


def read(path: Path) -> list[Row]:
    rows = []
    for line in path.read_text().splitlines():
        data = json.loads(line)
        data.pop("held")
        rows.append(Row(**data))
    return rows


def _version(argv: list[str], pattern: str) -> str:
    try:
        out = subprocess.run(argv, capture_output=True, text=True, check=False).stdout
    except OSError:
        return "not installed"
    found = re.search(pattern, out)
    return found.group(1) if found else out.strip()[:40]


def versions() -> dict[str, str]:
    from flowsafe import __version__

    return {
        "flowsafe": __version__,
        "restic": _version(["restic", "version"], r"restic ([\d.]+)"),
        "MariaDB": _version(["mariadbd", "--version"], r"Ver ([\d.]+-MariaDB)"),
        "Python": platform.python_version(),
    }


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")[:160]


def table(rows: list[Row], seconds: float | None = None) -> str:
    """RELIABILITY.md: the totals, the versions, one row per pair."""
    held = sum(row.held for row in rows)
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        "# Reliability: the fault matrix",
        "",
        "Written by `scripts/fault-matrix` (`make faults`) from one run of `tests/test_faults.py`:",
        "every command that changes something, driven through every fault that applies to it,",
        "on a real sample site, a real private MariaDB and a real restic repository.",
        "A pair *held* when production was unchanged (or fully at the target state), the",
        "repository stayed sound (`restic check` clean, no snapshot for a failed run, the",
        "next run succeeded with no manual cleanup), no secret leaked (argv, environments,",
        "output), and the exit code and message were the documented ones.",
        "",
        f"- date: {stamp}",
        "- versions: " + ", ".join(f"{k} {v}" for k, v in versions().items()),
        f"- pairs run: {len(rows)}, held: {held}, not held: {len(rows) - held}",
    ]
    if seconds is not None:
        lines.append(f"- run time: {seconds:.0f} s")
    lines += [
        "",
        "| command | fault | exit | message (first line) | left behind | production | "
        "repository | secrets | held |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for row in sorted(rows, key=lambda r: (r.command, r.fault)):
        yes = {True: "yes", False: "no"}
        left = ", ".join(row.left) or "nothing"
        message = row.message + (f" [{'; '.join(row.problems)}]" if row.problems else "")
        lines.append(
            f"| {row.command} | {_cell(row.fault)} | {row.exit} | {_cell(message)} | "
            f"{_cell(left)} | {yes[row.production]} | {yes[row.repository]} | "
            f"{yes[row.secrets]} | {yes[row.held]} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str]) -> int:
    results, out = Path(argv[0]), Path(argv[1])
    seconds = float(argv[2]) if len(argv) > 2 else None
    rows = read(results)
    out.write_text(table(rows, seconds))
    held = sum(row.held for row in rows)
    print(f"{out}: {len(rows)} pairs, {held} held, {len(rows) - held} not held")
    return 0 if rows and held == len(rows) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
