"""Human and JSON output for the CLI: tables, summaries, progress bars, sizes."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TransferSpeedColumn,
)

out = Console()
err = Console(stderr=True)

PHASES = {"dump": "Dumping database", "scan": "Scanning files", "upload": "Storing in restic"}


def size(value: int | None) -> str:
    """Bytes as a short human string (1.2 GiB)."""
    if value is None:
        return "-"
    amount = float(value)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if amount < 1024 or unit == "TiB":
            return f"{amount:.0f} {unit}" if unit == "B" else f"{amount:.1f} {unit}"
        amount /= 1024
    return f"{amount:.1f} TiB"


def _plain(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, Path):
        return str(value)
    return value


def print_json(value: Any) -> None:
    """Dataclasses, lists and dicts as indented JSON on stdout."""
    print(json.dumps(_plain(value), indent=2))


def when(value: datetime | None) -> str:
    return value.astimezone().strftime("%Y-%m-%d %H:%M:%S") if value else "-"


class BarProgress:
    """A rich progress display fed by ``(phase, done, total)`` callbacks."""

    def __init__(self, progress: Progress) -> None:
        self._progress = progress
        self._tasks: dict[str, TaskID] = {}

    def __call__(self, phase: str, done: int, total: int | None) -> None:
        task = self._tasks.get(phase)
        if task is None:
            task = self._progress.add_task(PHASES.get(phase, phase), total=total)
            self._tasks[phase] = task
        self._progress.update(task, completed=done, total=total)


@contextmanager
def progress_bars(enabled: bool = True) -> Iterator[BarProgress]:
    """Progress bars on stderr (hidden when not a terminal or when disabled)."""
    progress = Progress(
        TextColumn("{task.description:<20}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeElapsedColumn(),
        console=err,
        transient=True,
        disable=not enabled,
    )
    with progress:
        yield BarProgress(progress)


def show_backup(result: Any) -> None:
    """The summary at the end of a backup."""
    out.print(
        f"[green]Backup of '{result.site}' done[/] in {result.duration:.1f} s: snapshot "
        f"[bold]{result.snapshot_id[:8]}[/] ({result.reason})\n"
        f"  read {size(result.bytes_read)}, added {size(result.bytes_added)} to the repository; "
        f"{result.tables} tables ({size(result.dump_bytes)} of SQL), {result.files} files\n"
        f"  ITFlow {result.app_version or 'unknown'}, schema {result.schema_version or 'unknown'}"
    )


def show_snapshots(rows: list[Any]) -> None:
    """Snapshots as a table, newest last."""
    from rich.table import Table

    table = Table("ID", "Time", "Site", "Reason", "App", "Schema", "Size")
    for row in rows:
        table.add_row(row.short_id, when(row.time), row.site or "-", row.reason or "-",
                      row.app_version or "-", row.schema_version or "-", size(row.bytes))
    out.print(table if rows else "No flowsafe snapshots yet.")


def show_status(rows: list[Any]) -> None:
    """Per-site health lines."""
    for row in rows:
        mark = "[green]OK[/]" if row.ok else "[red]PROBLEM[/]"
        out.print(f"{mark} site [bold]{row.site}[/]  repository {row.repository} "
                  f"({size(row.repository_bytes)}, {row.snapshots} snapshots)")
        if row.last_backup:
            out.print(f"  last backup: {when(row.last_backup)} ({row.age_hours:.1f} h ago), "
                      f"snapshot {row.last_backup_id}")
        attempt = row.last_attempt
        if attempt:
            result = "succeeded" if attempt["ok"] else f"FAILED: {attempt['error']}"
            out.print(f"  last attempt on this machine: {attempt['time']} {result}")
        if row.problem:
            out.print(f"  [red]{row.problem}[/]")
