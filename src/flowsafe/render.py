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

PHASES = {
    "dump": "Dumping database",
    "scan": "Scanning files",
    "upload": "Storing in restic",
    "load": "Loading database",
    "files": "Restoring files",
}


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
        if row.last_verified:
            out.print(f"  last verified restorable: {when(row.last_verified)}, snapshot "
                      f"{row.last_verified_snapshot}")
        if row.rollback:
            kept = ", ".join(x for x in (row.rollback.database, row.rollback.folder) if x)
            out.print(f"  rollback state of the restore of {when(row.rollback.restored_at)}: "
                      f"{kept} ({size(row.rollback.bytes)}); `flowsafe undo` or "
                      "`flowsafe undo --purge`")
        if row.problem:
            out.print(f"  [red]{row.problem}[/]")


def _versions(label: str, app: str | None, schema: str | None, expects: str | None) -> str:
    return (f"  {label:<9} ITFlow {app or 'unknown'}, database schema {schema or 'unknown'}, "
            f"code expects {expects or 'unknown'}")


def show_plan(plan: Any) -> None:
    """The restore plan the admin confirms."""
    parts = " + ".join(p for p, on in (("database", plan.database), ("files", plan.files)) if on)
    out.print(f"[bold]Restore plan[/] for site [bold]{plan.site}[/]: {parts} from snapshot "
              f"{plan.snapshot_id[:8]} ({when(plan.snapshot_time)}, {plan.reason})")
    out.print(_versions("snapshot:", plan.incoming.app, plan.incoming.schema,
                        plan.incoming.expected_schema))
    out.print(_versions("live:", plan.live.app, plan.live.schema, plan.live.expected_schema))
    steps = ["take a pre-restore backup of the current state"] if plan.safety_backup else []
    steps += ["build the snapshot beside production (scratch database, sibling folder) "
              "and check it against the manifest"]
    steps += [f"then replace {what}" for what in plan.replaces]
    steps += [f"keep {what} (flowsafe undo swaps it back)" for what in plan.keeps]
    for number, step in enumerate(steps, 1):
        out.print(f"  {number}. {step}")
    for warning in plan.warnings:
        out.print(f"  [yellow]warning:[/] {warning}")
    if plan.refusal:
        out.print(f"  [red]refused:[/] {plan.refusal} (--force overrides)")


def show_restore(result: Any) -> None:
    kept = [str(x) for x in (result.rollback_database, result.rollback_folder) if x]
    out.print(f"[green]Restored[/] snapshot {result.plan.snapshot_id[:8]} into site "
              f"'{result.plan.site}'.")
    if result.safety_snapshot:
        out.print(f"  pre-restore backup: snapshot {result.safety_snapshot[:8]}")
    out.print(f"  kept for `flowsafe undo`: {', '.join(kept)}")
    out.print("  `flowsafe undo --purge` deletes it once the site works.")


def show_rollback(kept: Any, purge: bool) -> None:
    what = [f"database '{kept.db.sink}'" if kept.db else "", str(kept.files.sink)
            if kept.files else ""]
    verb = "Delete" if purge else "Swap back"
    out.print(f"{verb} the state replaced by the restore of {when(kept.started)} "
              f"(snapshot {kept.snapshot[:8]}): {', '.join(w for w in what if w)}")


def show_elsewhere_plan(options: Any, manifest: Any) -> None:
    out.print(f"Restore snapshot {options.snapshot} of site '{manifest.site}' (ITFlow "
              f"{manifest.itflow.app_version or 'unknown'}, schema "
              f"{manifest.itflow.schema_version or 'unknown'}) to {options.to_path} and "
              f"database '{options.target.database}' as {options.target.where()}; config.php "
              "there gets these database settings.")


def show_elsewhere(result: Any) -> None:
    out.print(f"[green]Restored[/] snapshot {result.snapshot_id[:8]} to {result.path}, database "
              f"'{result.database}' ({result.where}). Point the web server at it, then log in.")


def drill_json(report: Any) -> dict[str, Any]:
    data: dict[str, Any] = _plain(report)
    data["ok"] = report.ok
    return data


def show_drill(report: Any) -> None:
    """The drill report: one line per check."""
    from rich.table import Table

    colour = {"ok": "green", "failed": "red", "skipped": "yellow"}
    table = Table("Check", "Result", "Detail", "Time")
    for check in report.checks:
        table.add_row(check.name, f"[{colour[check.result]}]{check.result}[/]", check.detail,
                      f"{check.seconds:.1f} s")
    verdict = "[green]RESTORABLE[/]" if report.ok else (
        f"[red]PROBLEM[/] ({', '.join(report.failed())})")
    out.print(f"Drill of site [bold]{report.site}[/], snapshot {report.snapshot_id[:8]} "
              f"({when(report.snapshot_time)}): {verdict} in {report.seconds:.1f} s")
    out.print(table)
    if report.kept:
        out.print(f"Kept: {report.kept}")


def show_key_report(report: Any) -> None:
    """What a key command found about the key."""
    if report.fingerprint_known:
        verdict = "matches" if report.fingerprint_matches else "[red]does NOT match[/]"
        out.print(f"Site {report.site}: the key {verdict} the escrowed key's fingerprint.")
    else:
        out.print(f"Site {report.site}: no fingerprint known yet (escrow the key to record one).")
    line = f"{report.decrypted} of {report.credentials} stored credentials decrypt with it."
    out.print(line if not report.failed_ids else f"[red]{line}[/] Failing ids: "
              f"{report.failed_ids[:10]}")
    if report.escrow_record:
        out.print(f"Escrowed in the repository (record {report.escrow_record[:8]}).")


def show_archive(report: Any) -> None:
    """What ``archive inspect`` found: form, version.txt, entries, verdict."""
    from rich.table import Table

    verdict = "[green]VERIFIED[/]" if report.ok else "[red]PROBLEM[/]"
    out.print(f"{report.path}: {verdict}", highlight=False)
    out.print(f"  form: {report.label} ({report.form}), {size(report.bytes)}", highlight=False)
    for name, value in report.version.items():
        out.print(f"  {name}: {value}", highlight=False)
    colour = {"ok": "green", "not recorded": "yellow"}
    table = Table("Entry", "Size", "Stored", "Encrypted", "SHA-256", "Checksum")
    for entry in report.entries:
        shade = colour.get(entry.result, "red")
        table.add_row(entry.name, size(entry.bytes), size(entry.stored_bytes),
                      "AES-256" if entry.encrypted else "no", (entry.sha256 or "-")[:16],
                      f"[{shade}]{entry.result}[/]")
    out.print(table)
    if report.uploads is not None:
        out.print(f"  uploads.zip holds {report.uploads.files} files, "
                  f"{size(report.uploads.bytes)}")
    if report.master_key_length is not None:
        out.print(f"  master_key.txt holds a {report.master_key_length}-character key (not shown)")
    for problem in report.problems:
        out.print(f"  [red]problem:[/] {problem}", highlight=False)


def show_export(result: Any) -> None:
    out.print(f"[green]Exported[/] snapshot {result.snapshot_id[:8]} of site '{result.site}' "
              f"to {result.path} ({size(result.bytes)}, mode 0600) in {result.seconds:.1f} s",
              highlight=False)
    out.print(f"  db.sql: {result.tables} tables; uploads.zip: {result.uploads_files} files, "
              f"{size(result.uploads_bytes)}")
    if result.skipped:
        out.print(f"  [yellow]left out (not regular files, as ITFlow does):[/] "
                  f"{', '.join(result.skipped[:5])}", highlight=False)
    out.print(f"  restore it with ITFlow: php scripts/restore_cli.php --file={result.path}",
              highlight=False)
