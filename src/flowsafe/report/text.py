"""The report's words, shared by the HTML and the PDF so that both say the same."""

from __future__ import annotations

from datetime import datetime

from flowsafe.render import size
from flowsafe.report.model import SiteReport

VERDICT = {"ok": "OK", "warning": "OK, with warnings", "problem": "NEEDS ATTENTION"}


def stamp(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M UTC") if value else "never"


def seconds(value: float | None) -> str:
    return f"{value:.1f} s" if value is not None else "-"


def title(report: SiteReport) -> str:
    return f"Backup report: site {report.site}, {report.month}"


def verdict(report: SiteReport) -> list[str]:
    """The status in words: the verdict, then the problem and warnings."""
    status = report.status
    lines = [f"Status: {VERDICT[status.state]}"]
    if status.problem:
        lines.append(status.problem)
    return lines + status.warnings


def protected(report: SiteReport) -> list[tuple[str, str]]:
    p = report.protected
    if p is None:
        return [("Backup", "no backup of this site up to the end of the month")]
    return [
        ("Newest backup", stamp(p.snapshot_time)),
        ("ITFlow version", p.app_version or "unknown"),
        ("Database schema", p.schema_version or "unknown"),
        ("Database", f"{p.database}: {p.tables} tables, {size(p.database_bytes)} of SQL"),
        ("Files", f"{p.files} files, {size(p.files_bytes)}"),
        ("Uploads", f"{p.uploads} files, {size(p.uploads_bytes)}"),
    ]


def no_backups(report: SiteReport) -> str:
    return f"No backup of site {report.site} in {report.month}."


BACKUP_HEADER = ("Time", "Snapshot", "Reason", "Duration", "Added", "Size")


def backup_rows(report: SiteReport) -> list[tuple[str, ...]]:
    return [(stamp(b.time), b.snapshot, b.reason, seconds(b.seconds), size(b.bytes_added),
             size(b.size)) for b in report.backups]


def retention(report: SiteReport) -> str:
    kept = [f"{count} {rule}" for rule, count in report.retention.items() if count]
    return "Retention (per repository): keep " + ", ".join(kept) + "."


REPOSITORY_HEADER = ("Repository", "Where", "Backups", "Newest", "Key escrow")


def repository_rows(report: SiteReport) -> list[tuple[str, ...]]:
    return [(r.name, r.url, "-" if r.error else str(r.snapshots),
             r.error or stamp(r.newest), "escrowed" if r.escrowed else "not escrowed")
            for r in report.repositories]


def key_lines(report: SiteReport) -> list[str]:
    status = report.status
    escrow = ("The master key is escrowed in the repository (sealed with age)."
              if status.escrowed else
              "The master key is NOT escrowed: run `flowsafe key unwrap` to escrow it.")
    decrypted = status.credentials_decrypted
    return [escrow, "Stored credentials last decrypted in a drill: " + stamp(decrypted) + "."]


def drill_heading(drill_time: datetime, repository: str, snapshot: str, ok: bool) -> str:
    return (f"{stamp(drill_time)}, repository '{repository}', snapshot {snapshot}: "
            f"{'PASSED' if ok else 'FAILED'}")


def no_drills(report: SiteReport) -> str:
    return f"No drill of site {report.site} in {report.month}."


def footer(report: SiteReport) -> str:
    return (f"Generated {stamp(report.generated)} by flowsafe. Every backup is an encrypted "
            "restic snapshot; a drill restores one into a private database and checks it.")
