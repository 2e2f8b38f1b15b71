"""Human and JSON output for the CLI: tables, summaries, progress bars, sizes.

On a terminal: rich tables, colours and progress bars. Anywhere else (cron mail, the
journal, a log file, a pipe): plain lines, no box drawing, no colours, no wrapping,
so that one file name or error stays on one line for ``grep``. Text that comes from
users, sites or errors is escaped (``esc``), so rich never reads ``[sites.x]`` as markup.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TransferSpeedColumn,
)
from rich.table import Table
from rich.text import Text


def _console(stderr: bool) -> Console:
    console = Console(stderr=stderr, highlight=False, emoji=False)
    console.soft_wrap = not console.is_terminal  # plain lines are never wrapped
    return console


out = _console(stderr=False)
err = _console(stderr=True)

PHASES = {
    "dump": "Dumping database",
    "scan": "Scanning files",
    "upload": "Storing in restic",
    "load": "Loading database",
    "files": "Restoring files",
}


def esc(value: object) -> str:
    """User, site or error text, safe inside rich markup."""
    return escape(str(value))


Cell = str | Text


def table(headers: Sequence[str], rows: Iterable[Sequence[Cell]]) -> None:
    """A table on a terminal; aligned plain lines (header first) anywhere else."""
    rows = list(rows)
    if out.is_terminal:
        grid = Table(*headers)
        for row in rows:
            grid.add_row(*(c if isinstance(c, Text) else Text(c) for c in row))
        out.print(grid)
        return
    lines = [list(headers), *([c.plain if isinstance(c, Text) else c for c in r] for r in rows)]
    widths = [max(len(line[i]) for line in lines) for i in range(len(headers))]
    for line in lines:
        text = "  ".join(value.ljust(width) for value, width in zip(line, widths, strict=True))
        out.print(text.rstrip(), markup=False)


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
        disable=not enabled or not err.is_terminal,
    )
    with progress:
        yield BarProgress(progress)


def show_backup(result: Any) -> None:
    """The summary at the end of a backup."""
    out.print(
        f"[green]Backup of '{esc(result.site)}' done[/] in {result.duration:.1f} s: snapshot "
        f"[bold]{result.snapshot_id[:8]}[/] ({esc(result.reason)})\n"
        f"  read {size(result.bytes_read)}, added {size(result.bytes_added)} to the repository; "
        f"{result.tables} tables ({size(result.dump_bytes)} of SQL), {result.files} files\n"
        f"  ITFlow {esc(result.app_version or 'unknown')}, schema "
        f"{esc(result.schema_version or 'unknown')}"
    )
    for note in result.lossy:
        out.print(f"  [yellow]note:[/] {note}")
    if result.unchecked:
        out.print(f"  [yellow]note:[/] {result.unchecked}")
    show_imports(result.imported, indent="  ")


def show_imports(outcomes: list[Any], indent: str = "") -> None:
    """One line per ITFlow archive ``archive import`` (or a backup) took in or passed over."""
    for o in outcomes:
        if o.action == "imported":
            line = (f"[green]imported[/] {esc(o.path.name)} as snapshot {o.snapshot_id[:8]} "
                    f"({when(o.snapshot_time)}): {o.tables} tables, {o.rows} rows, "
                    f"{o.uploads_files} uploads ({size(o.uploads_bytes)})")
        elif o.action == "escrowed":
            line = (f"[green]escrowed[/] the master key of {esc(o.path.name)} (record "
                    f"{o.snapshot_id[:8]})")
        elif o.action == "failed":
            line = f"[red]not imported[/] {esc(o.path.name)}: {esc(o.detail)}"
        else:
            shown = f" (snapshot {o.snapshot_id[:8]})" if o.snapshot_id else ""
            line = f"{esc(o.path.name)}: {o.action}{shown}: {esc(o.detail or 'nothing to do')}"
        out.print(indent + line, highlight=False, soft_wrap=True)


def show_snapshots(rows: list[Any]) -> None:
    """Snapshots as a table, newest last."""
    if not rows:
        out.print("No flowsafe snapshots yet.")
        return
    several = len({row.repository for row in rows}) > 1
    table(("ID", "Time", "Site", "Reason", "App", "Schema", "Size",
           *(["Repository"] if several else [])),
          [(row.short_id, when(row.time), row.site or "-", row.reason or "-",
            row.app_version or "-", row.schema_version or "-", size(row.bytes),
            *([row.repository] if several else [])) for row in rows])


def show_prune(results: list[Any]) -> None:
    """What retention kept and removed for one site, per repository, every removed
    snapshot named."""
    for result in results:
        where = f"site {esc(result.site)}, repository '{esc(result.repository)}'"
        if result.error:
            out.print(f"[red]{where}: prune FAILED:[/] {esc(result.error)}")
            continue
        verb = "would remove" if result.dry_run else "removed"
        out.print(f"{where}: keeps {len(result.kept)}, {verb} {len(result.removed)} snapshots")
        for gone in result.removed:
            out.print(f"  {verb} {gone.short_id} {when(gone.time)} {esc(gone.reason or '-')}")


STATE_MARKS = {"ok": "[green]OK[/]", "warning": "[yellow]WARNING[/]",
               "problem": "[red]PROBLEM[/]"}


def show_status(row: Any) -> None:
    """One site's health lines."""
    where = "" if row.configured else " (found in the repository)"
    out.print(f"{STATE_MARKS[row.state]} site [bold]{esc(row.site)}[/]{where}  repository "
              f"{esc(row.repository)} ({size(row.repository_bytes)}, {row.snapshots} snapshots)")
    if row.last_backup:
        out.print(f"  last backup: {when(row.last_backup)} ({row.age_hours:.1f} h ago), "
                  f"snapshot {row.last_backup_id}")
    attempt = row.last_attempt
    if attempt:
        result = "succeeded" if attempt["ok"] else f"FAILED: {esc(attempt['error'])}"
        out.print(f"  last attempt on this machine: {attempt['time']} {result}")
    if row.last_verified:
        out.print(f"  last verified restorable: {when(row.last_verified)}, snapshot "
                  f"{row.last_verified_snapshot}")
    _show_site_extras(row)
    if row.rollback:
        kept = ", ".join(x for x in (row.rollback.database, row.rollback.folder) if x)
        out.print(f"  rollback state of the restore of {when(row.rollback.restored_at)}: "
                  f"{esc(kept)} ({size(row.rollback.bytes)}); `flowsafe undo` or "
                  "`flowsafe undo --purge`")
    for warning in row.warnings:
        out.print(f"  [yellow]warning:[/] {esc(warning)}")
    if row.problem:
        out.print(f"  [red]{esc(row.problem)}[/]")


def show_failures(failures: Iterable[tuple[str, str | None]]) -> None:
    """One line per (site, problem) on stderr (what cron mail and the journal keep)."""
    for site, problem in failures:
        err.print(f"[red]error:[/] site {esc(site)}: {esc(problem)}")


def show_log(entries: list[Any]) -> None:
    """Recorded runs, newest last."""
    if not entries:
        out.print("No runs recorded on this machine yet.")
        return
    table(("Time", "Site", "Action", "Reason", "Result", "Duration", "Snapshot", "Error"),
          [(when(datetime.fromisoformat(e.time)), e.site, e.action, e.reason or "-",
            Text("ok", "green") if e.ok else Text("FAILED", "red"), f"{e.duration:.1f} s",
            (e.snapshot or "-")[:8], e.error or "") for e in entries])


def _show_site_extras(row: Any) -> None:
    """Status lines of the drill, the key, notifications and each repository."""
    if row.last_drill:
        result = "passed" if row.last_drill_ok else "FAILED"
        out.print(f"  last drill: {when(row.last_drill)} {result}")
    decrypted = when(row.credentials_decrypted) if row.credentials_decrypted else "never"
    out.print(f"  credentials last decrypted in a drill: {decrypted}; master key "
              f"{'escrowed' if row.escrowed else 'NOT escrowed (flowsafe key unwrap)'}")
    if row.last_run and row.last_run["host"]:
        result = "ok" if row.last_run["ok"] else "FAILED"
        out.print(f"  last recorded run: {row.last_run['command']} {result} on "
                  f"{row.last_run['host']} at {when(datetime.fromisoformat(row.last_run['time']))}")
    failure = row.last_notification_failure
    if failure:
        out.print(f"  last notification failure: {failure['time']} "
                  f"({esc(failure['reason'])}): {esc(failure['error'])}")
    for repo in row.repositories if len(row.repositories) > 1 else []:
        newest = (f"newest {repo.newest_id} at {when(repo.newest)}" if repo.newest
                  else "no backup")
        line = (f"  repository '{esc(repo.name)}' {esc(repo.url)}: {repo.snapshots} snapshots, "
                f"{newest}, {size(repo.bytes)}, key "
                f"{'escrowed' if repo.escrowed else 'not escrowed'}")
        if repo.last_drill:
            line += f", last drill {when(repo.last_drill)} " + (
                "passed" if repo.last_drill_ok else "FAILED")
        if repo.last_copy:
            line += f", last copy {repo.last_copy['time']} " + (
                "ok" if repo.last_copy["ok"] else "FAILED")
        out.print(line if not repo.error else f"  repository '{esc(repo.name)}' "
                  f"{esc(repo.url)}: {esc(repo.error)}")


def show_copies(outcomes: list[Any]) -> None:
    """One line per site and destination."""
    for c in outcomes:
        if c.ok:
            made = " (created the repository)" if c.created else ""
            out.print(f"[green]Copied[/] site {esc(c.site)} to '{esc(c.repository)}'{made}: "
                      f"{c.copied} new snapshots, {c.already_there} already there, "
                      f"{c.seconds:.1f} s")
        else:
            out.print(f"[red]Copy of site {esc(c.site)} to '{esc(c.repository)}' FAILED:[/] "
                      f"{esc(c.error)} "
                      "(the local backups are untouched; the next run retries)")


def _versions(label: str, app: str | None, schema: str | None, expects: str | None) -> str:
    return (f"  {label:<9} ITFlow {esc(app or 'unknown')}, database schema "
            f"{esc(schema or 'unknown')}, code expects {esc(expects or 'unknown')}")


def show_plan(plan: Any) -> None:
    """The restore plan the admin confirms."""
    parts = " + ".join(p for p, on in (("database", plan.database), ("files", plan.files)) if on)
    out.print(f"[bold]Restore plan[/] for site [bold]{esc(plan.site)}[/]: {parts} from "
              f"snapshot {plan.snapshot_id[:8]} taken {when(plan.snapshot_time)} "
              f"({esc(plan.reason)}); {esc(plan.trust)}")
    if plan.brings:
        out.print(f"  brings back: {esc(', '.join(plan.brings))}")
    out.print(_versions("snapshot:", plan.incoming.app, plan.incoming.schema,
                        plan.incoming.expected_schema))
    out.print(_versions("live:", plan.live.app, plan.live.schema, plan.live.expected_schema))
    steps = ["take a pre-restore backup of the current state"] if plan.safety_backup else []
    steps += ["build the snapshot beside production (scratch database, sibling folder) "
              "and check it against the manifest"]
    steps += [f"then replace {what}" for what in plan.replaces]
    steps += [f"keep {what} (flowsafe undo swaps it back)" for what in plan.keeps]
    for number, step in enumerate(steps, 1):
        out.print(f"  {number}. {esc(step)}")
    for warning in plan.warnings:
        out.print(f"  [yellow]warning:[/] {esc(warning)}")
    if plan.refusal:
        out.print(f"  [red]refused:[/] {esc(plan.refusal)} (--force overrides)")


def show_restore(result: Any) -> None:
    kept = [str(x) for x in (result.rollback_database, result.rollback_folder) if x]
    out.print(f"[green]Restored[/] snapshot {result.plan.snapshot_id[:8]} into site "
              f"'{esc(result.plan.site)}'.")
    if result.safety_snapshot:
        out.print(f"  pre-restore backup: snapshot {result.safety_snapshot[:8]}")
    out.print(f"  kept for `flowsafe undo`: {esc(', '.join(kept))}")
    out.print("  `flowsafe undo --purge` deletes it once the site works.")
    if result.phases:
        out.print(f"  time: {esc(time_split(result.phases))}")


def time_split(phases: dict[str, float]) -> str:
    """'database 12.0 s (reading 1.0 s, waiting 7.2 s), files 5.0 s' from phase seconds
    whose sub-phases are named '<phase>: <part>'."""
    parts: dict[str, list[str]] = {}
    for name, seconds in phases.items():
        top, _, sub = name.partition(": ")
        parts.setdefault(top, [])
        if sub:
            parts[top].append(f"{sub} {seconds:.1f} s")
    return ", ".join(f"{top} {phases.get(top, 0):.1f} s" + (f" ({', '.join(subs)})" if subs
                                                             else "")
                     for top, subs in parts.items())


def show_rollback(kept: Any, purge: bool) -> None:
    what = [f"database '{kept.db.sink}'" if kept.db else "", str(kept.files.sink)
            if kept.files else ""]
    verb = "Delete" if purge else "Swap back"
    out.print(f"{verb} the state replaced by the restore of {when(kept.restored_at)} "
              f"(snapshot {kept.snapshot[:8]}): {esc(', '.join(w for w in what if w))}")


def show_elsewhere_plan(options: Any, manifest: Any) -> None:
    out.print(esc(
        f"Restore snapshot {options.snapshot} of site '{manifest.site}' (ITFlow "
        f"{manifest.itflow.app_version or 'unknown'}, schema "
        f"{manifest.itflow.schema_version or 'unknown'}) to {options.to_path} and "
        f"database '{options.database}'; config.php there gets the database settings of "
        f"account '{options.server.user}'."))


def show_elsewhere(result: Any) -> None:
    out.print(esc(f"Restored snapshot {result.snapshot_id[:8]} to {result.path}, database "
                  f"'{result.database}' ({result.where}, application account "
                  f"'{result.app_user}'; {result.trust}). Point the web server at it, then "
                  "log in."))


def show_recover_plan(plan: Any) -> None:
    """What ``flowsafe recover`` will do."""
    if plan.resuming:
        out.print(f"Finishing the recover of site {esc(plan.site)} that was interrupted "
                  f"({esc(plan.resuming)}).")
    out.print(esc(f"Recover site '{plan.site}' from snapshot {plan.snapshot_id[:8]} of "
                  f"{when(plan.snapshot_time)} (ITFlow {plan.app_version or 'unknown'}, schema "
                  f"{plan.schema_version or 'unknown'}; {plan.trust}) in {plan.repository}:"))
    for number, step in enumerate([
        f"database '{plan.database}' and the application account '{plan.app_user}'@"
        "'localhost' (random password, rights on that database only) in config.php",
        f"files into {plan.to}, owned by {plan.web_user}"
        + (f", $config_base_url = '{plan.base_url}'" if plan.base_url else ""),
        f"check the login page (PHP as {plan.web_user}) and, with a key, every credential",
        "write flowsafe's config for the site and take a post-recover backup",
    ], 1):
        out.print(f"  {number}. {esc(step)}")


def show_recover(result: Any) -> None:
    """What ``flowsafe recover`` did, and what is left by hand."""
    plan = result.plan
    out.print(esc(f"Recovered site '{plan.site}' into {plan.to} (database '{plan.database}', "
                  f"account '{plan.app_user}', files owned by {plan.web_user})."))
    for line in (result.login, result.credentials,
                 f"post-recover backup: snapshot {str(result.backup_snapshot)[:8]}; config "
                 f"{result.config_path}"):
        if line:
            out.print(f"  {esc(line)}")
    out.print("Left to do by hand:")
    for number, step in enumerate(result.left_to_do, 1):
        out.print(f"  {number}. {esc(step.title)}")
        for line in step.lines:
            out.print(f"       {esc(line)}", highlight=False)


def show_undo(result: Any) -> None:
    """What undo did."""
    when_restored = when(result.restore_time)
    if result.action == "forget":
        out.print(f"Forgot the restore journal of site {esc(result.site)} (restore of "
                  f"{when_restored}); nothing else was touched.")
    elif result.action == "purge":
        kept = ", ".join(str(x) for x in (result.database, result.folder) if x)
        out.print(f"Deleted the state replaced by the restore of {when_restored} (site "
                  f"{esc(result.site)}): {esc(kept)}.")
    else:
        again = "redo" if result.action == "undo" else "undo"
        out.print(f"{'Swapped back' if result.action == 'undo' else 'Redid'} the restore of "
                  f"{when_restored} (site {esc(result.site)}); `flowsafe undo` again to "
                  f"{again}.")


def show_update_plan(plan: Any) -> None:
    """What ``flowsafe update`` found and will do."""
    out.print(f"[bold]Update[/] of site [bold]{esc(plan.site)}[/] ({esc(plan.path)}), "
              f"tracking {esc(plan.upstream)}:")
    out.print(f"  installed: ITFlow {esc(plan.current_app)} (commit {plan.current_commit[:8]}), "
              f"database schema {esc(plan.schema_in_db)}, code expects {esc(plan.expected_now)}")
    out.print(f"  available: ITFlow {esc(plan.available_app)} (commit "
              f"{plan.available_commit[:8]}), code expects {esc(plan.expected_after)}")
    out.print("  steps:")
    for number, step in enumerate(plan.steps(), 1):
        out.print(f"    {number}. {esc(step)}")


def show_update(result: Any) -> None:
    plan = result.plan
    out.print(f"[green]Updated[/] site '{esc(plan.site)}' from ITFlow {esc(plan.current_app)} "
              f"(schema {esc(plan.schema_in_db)}) to {esc(plan.available_app)} (schema "
              f"{esc(plan.expected_after)}) in {result.seconds:.1f} s: pre-update backup "
              f"{result.pre_update[:8]}, post-update backup {result.post_update[:8]}; the "
              f"updater's output is in {esc(result.transcript)}")


def show_schedule(installed: Any) -> None:
    """``schedule show``: the installed jobs, their commands, next runs and files."""
    if installed.kind is None:
        out.print("No flowsafe schedule is installed: `flowsafe schedule install` adds one.")
        return
    out.print(f"{installed.kind} schedule for config {esc(installed.config or 'unknown')}; "
              f"output goes to {esc(installed.output)}")
    for job in installed.jobs:
        out.print(f"  {job.name}: {esc(job.when)}; next run {esc(job.next_run or 'unknown')}")
        for command in job.commands:
            out.print(f"    runs {esc(command)}")
    for path in installed.files:
        out.print(f"  file {esc(path)}")


def drill_json(report: Any) -> dict[str, Any]:
    data: dict[str, Any] = _plain(report)
    data["ok"] = report.ok
    return data


COLOURS = {"ok": "green", "failed": "red", "skipped": "yellow"}


def show_drill(report: Any) -> None:
    """The drill report: one line per check."""
    verdict = "[green]RESTORABLE[/]" if report.ok else (
        f"[red]PROBLEM[/] ({esc(', '.join(report.failed()))})")
    out.print(f"Drill of site [bold]{esc(report.site)}[/], snapshot {report.snapshot_id[:8]} "
              f"({when(report.snapshot_time)}): {verdict} in {report.seconds:.1f} s")
    table(("Check", "Result", "Detail", "Time"),
          [(check.name, Text(check.result, COLOURS[check.result]), check.detail,
            f"{check.seconds:.1f} s") for check in report.checks])
    for note in report.notes:
        out.print(f"[yellow]note:[/] {esc(note)}")
    if report.kept:
        out.print(f"Kept: {esc(report.kept)}")


def show_key_report(report: Any) -> None:
    """What a key command found about the key."""
    site = esc(report.site)
    if report.fingerprint_known:
        verdict = "matches" if report.fingerprint_matches else "[red]does NOT match[/]"
        out.print(f"Site {site}: the key {verdict} the escrowed key's fingerprint.")
    elif not report.escrow_record:
        out.print(f"Site {site}: no fingerprint known yet (escrow the key to record one).")
    line = f"{report.decrypted} of {report.credentials} stored credentials decrypt with it."
    out.print(line if not report.failed_ids else f"[red]{line}[/] Failing ids: "
              f"{esc(report.failed_ids[:10])}")
    if report.escrow_record:
        first = "" if report.fingerprint_known else "; its fingerprint is recorded from now on"
        out.print(f"Escrowed in the repository (record {report.escrow_record[:8]}){first}.")


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
