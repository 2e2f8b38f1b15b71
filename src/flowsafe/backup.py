"""``flowsafe backup``: one consistent restic snapshot of a site.

Order: take the site lock; dump the database (one ``--single-transaction``
stream, split per table) into the fixed staging folder; scan the tree; write
the manifest; ``restic backup`` the staging folder and the site tree as one
snapshot; remove the staging folder. A failure at any step writes no snapshot
and leaves no staging folder behind.
"""

from __future__ import annotations

import logging
import shutil
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from flowsafe import __version__, runs
from flowsafe.config import Config, select_site
from flowsafe.errors import ConfigError
from flowsafe.itflow.site import schema_version_in_use
from flowsafe.keys import escrow
from flowsafe.manifest import DatabaseEntry, FilesEntry, ItflowEntry, Manifest, TableEntry
from flowsafe.mariadb.connection import connect, server_version
from flowsafe.mariadb.dump import DumpResult, dump_database
from flowsafe.notify import hooks
from flowsafe.notify.outcome import Outcome
from flowsafe.restic import Progress as ResticProgress
from flowsafe.scan import TreeStats, scan_tree
from flowsafe.session import locked_site
from flowsafe.sites import Site

log = logging.getLogger(__name__)

ProgressFn = Callable[[str, int, int | None], None]


@dataclass(frozen=True)
class BackupResult:
    """What the summary shows."""

    site: str
    snapshot_id: str
    reason: str
    duration: float
    bytes_read: int
    bytes_added: int
    dump_bytes: int
    tables: int
    files: int
    app_version: str | None
    schema_version: str | None


def _no_progress(phase: str, done: int, total: int | None) -> None:
    """Default progress sink."""


def snapshot_tags(site: Site, reason: str, manifest: Manifest) -> list[str]:
    """Tags: the site filter, the reason, and versions/size so listings need no reads."""
    size = manifest.database.total_bytes + manifest.files.bytes
    tags = [*site.tags, f"reason:{reason}", f"bytes:{size}"]
    if manifest.itflow.app_version:
        tags.append(f"app:{manifest.itflow.app_version}")
    if manifest.itflow.schema_version:
        tags.append(f"schema:{manifest.itflow.schema_version}")
    return [tag.replace(",", "_") for tag in tags]


def restic_excludes(root: Path, excludes: list[str]) -> list[str]:
    """Site-relative exclusions as absolute restic patterns (glob characters escaped)."""
    patterns = []
    for rel in excludes:
        absolute = str(root / rel.strip("/"))
        patterns.append("".join("\\" + c if c in "*?[]\\" else c for c in absolute))
    return patterns


def _database_entry(site: Site, dump: DumpResult, version: str) -> DatabaseEntry:
    return DatabaseEntry(
        name=site.database.database,
        server_version=version,
        header_file=f"db/{dump.header_file}",
        routines_file=f"db/{dump.routines_file}",
        footer_file=f"db/{dump.footer_file}",
        tables=[
            TableEntry(name=t.name, file=f"db/{t.file}", bytes=t.bytes, rows=t.rows,
                       sha256=t.sha256)
            for t in dump.tables
        ],
    )


def _files_entry(site: Site, stats: TreeStats) -> FilesEntry:
    return FilesEntry(
        root=str(site.install.path),
        count=stats.count,
        bytes=stats.bytes,
        uploads_count=stats.uploads_count,
        uploads_bytes=stats.uploads_bytes,
        excluded=list(site.config.exclude),
    )


def prepare_staging(site: Site) -> Path:
    """An empty staging folder at the site's fixed path (stale content removed)."""
    staging = site.staging
    if staging.exists():
        log.info("removing a stale staging folder %s", staging)
        shutil.rmtree(staging)
    staging.mkdir(parents=True, mode=0o700)
    return staging


def _take(site: Site, reason: str, progress: ProgressFn) -> BackupResult:
    started = time.monotonic()
    restic_version = ".".join(map(str, site.restic.version()))
    if not site.restic.exists():
        raise ConfigError(
            f"no restic repository at {site.restic.repo.url}: run `flowsafe init` first"
        )
    with connect(site.database) as conn:
        schema = schema_version_in_use(conn)
    version = server_version(site.database)
    staging = prepare_staging(site)
    try:
        dump = dump_database(site.database, staging / "db",
                             on_bytes=lambda done: progress("dump", done, None))
        stats = scan_tree(site.install.path, site.config.exclude)
        progress("scan", stats.count, stats.count)
        manifest = Manifest(
            site=site.name,
            host=socket.gethostname(),
            created=datetime.now(UTC),
            reason=reason,
            staging=str(staging),
            flowsafe_version=__version__,
            restic_version=restic_version,
            itflow=ItflowEntry(
                app_version=site.install.app_version,
                git_commit=site.install.git_commit,
                schema_version=schema,
                expected_schema_version=site.install.expected_schema_version,
            ),
            database=_database_entry(site, dump, version),
            files=_files_entry(site, stats),
            master_key_fingerprint=escrow.known_fingerprint(site.restic, site.name),
        )
        manifest.write(staging)

        def on_restic(p: ResticProgress) -> None:
            progress("upload", p.bytes_done, p.total_bytes or None)

        summary = site.restic.backup(
            [staging, site.install.path],
            tags=snapshot_tags(site, reason, manifest),
            host=manifest.host,
            excludes=restic_excludes(site.install.path, site.config.exclude),
            on_progress=on_restic,
        )
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return BackupResult(
        site=site.name,
        snapshot_id=summary.snapshot_id,
        reason=reason,
        duration=time.monotonic() - started,
        bytes_read=summary.total_bytes_processed,
        bytes_added=summary.data_added,
        dump_bytes=dump.total_bytes,
        tables=len(dump.tables),
        files=stats.count,
        app_version=site.install.app_version,
        schema_version=schema,
    )


def backup_site(config: Config, site: Site, reason: str, progress: ProgressFn) -> BackupResult:
    """Back up a site whose lock the caller holds; records the outcome for ``status``."""
    try:
        result = _take(site, reason, progress)
    except BaseException as exc:
        runs.record(config.state_dir, site.name, "backup", ok=False, reason=reason,
                    error=str(exc) or type(exc).__name__)
        raise
    runs.record(config.state_dir, site.name, "backup", ok=True, reason=reason,
                snapshot=result.snapshot_id)
    return result


def run_backup(
    config: Config, site_name: str | None, reason: str = "manual",
    progress: ProgressFn = _no_progress,
) -> BackupResult:
    """Back up one site under its lock; then copy, record, notify (``notify.hooks``)."""
    name = select_site(config, site_name)[0]
    hooks.before_run(config, name, "backup")
    started = time.monotonic()
    try:
        with locked_site(config, site_name, "backup") as site:
            result = backup_site(config, site, reason, progress)
    except Exception as exc:
        hooks.after_run(config, Outcome.failed(name, "backup", exc, time.monotonic() - started))
        raise
    hooks.after_run(config, Outcome(name, "backup", True, snapshot_id=result.snapshot_id,
                                    duration=result.duration, bytes_added=result.bytes_added))
    return result
