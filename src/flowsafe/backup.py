"""``flowsafe backup``: one consistent restic snapshot of a site.

Order: take the site lock; dump the database (one ``--single-transaction``
stream, split per table) into the fixed staging folder; scan the tree; write
the manifest; ``restic backup`` the staging folder and the site tree as one
snapshot (``store.py``); remove the staging folder. A failure at any step writes no
snapshot and leaves no staging folder behind. With ``import_itflow_archives``, the
archives ITFlow made since are then imported (``archive/importer.py``).
"""

from __future__ import annotations

import grp
import logging
import pwd
import shutil
import socket
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from flowsafe import __version__, hooks, runs
from flowsafe.archive.importer import ImportOutcome, import_new
from flowsafe.config import Config, select_site
from flowsafe.itflow.site import schema_version_in_use
from flowsafe.keys import escrow
from flowsafe.manifest import FilesEntry, ItflowEntry, Manifest
from flowsafe.mariadb.connection import connect
from flowsafe.notify import announce
from flowsafe.notify.outcome import Outcome
from flowsafe.restic import pattern
from flowsafe.scan import TreeStats, scan_tree
from flowsafe.session import locked_site
from flowsafe.sites import Site
from flowsafe.store import ProgressFn as ProgressFn
from flowsafe.store import (
    capture_database,
    no_progress,
    prepare_staging,
    restic_version,
    store_snapshot,
)

log = logging.getLogger(__name__)


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
    lossy: list[str]  # columns an SQL dump cannot carry exactly
    unchecked: str | None  # tables without a checksum, and why
    imported: list[ImportOutcome] = field(default_factory=list)  # import_itflow_archives


def restic_excludes(root: Path, excludes: list[str]) -> list[str]:
    """Site-relative exclusions as absolute restic patterns (glob characters escaped)."""
    return [pattern(str(root / rel.strip("/"))) for rel in excludes]


def _files_entry(site: Site, stats: TreeStats) -> FilesEntry:
    owner = site.install.path.stat()
    return FilesEntry(
        root=str(site.install.path),
        count=stats.count,
        bytes=stats.bytes,
        uploads_count=stats.uploads_count,
        uploads_bytes=stats.uploads_bytes,
        excluded=list(site.config.exclude),
        owner=name_of(pwd.getpwuid, owner.st_uid),
        group=name_of(grp.getgrgid, owner.st_gid),
    )


def name_of(lookup: Callable[[int], Any], number: int) -> str | None:
    """The user or group name of a number, if this machine has one."""
    try:
        return str(lookup(number)[0])
    except KeyError:
        return None


def _take(site: Site, reason: str, progress: ProgressFn) -> BackupResult:
    started = time.monotonic()
    site.restic.version()  # restic missing or too old: said before the dump
    with ThreadPoolExecutor(max_workers=1) as beside:  # restic's answers while the dump runs
        facts = beside.submit(_repository_facts, site)
        return _dump_and_store(site, reason, progress, started, facts)


def _repository_facts(site: Site) -> tuple[str, str | None]:
    """restic's version once the repository is known to be there, and the fingerprint of
    the site's escrowed key (if any)."""
    return restic_version(site), escrow.known_fingerprint(site.restic, site.name)


def _dump_and_store(site: Site, reason: str, progress: ProgressFn, started: float,
                    facts: Future[tuple[str, str | None]]) -> BackupResult:
    with connect(site.database) as conn:
        schema = schema_version_in_use(conn)
    staging = prepare_staging(site)
    try:
        captured = capture_database(site.database, staging, progress)
        version, fingerprint = facts.result()
        stats = scan_tree(site.install.path, site.config.exclude)
        progress("scan", stats.count, stats.count)
        manifest = Manifest(
            site=site.name,
            host=socket.gethostname(),
            created=datetime.now(UTC).replace(microsecond=0),
            reason=reason,
            staging=str(staging),
            flowsafe_version=__version__,
            restic_version=version,
            itflow=ItflowEntry(
                app_version=site.install.app_version,
                git_commit=site.install.git_commit,
                schema_version=schema,
                expected_schema_version=site.install.expected_schema_version,
                installation_id=site.install.config.installation_id,
            ),
            database=captured.entry,
            files=_files_entry(site, stats),
            master_key_fingerprint=fingerprint,
        )
        summary = store_snapshot(site, staging, manifest, [staging, site.install.path],
                                 restic_excludes(site.install.path, site.config.exclude),
                                 progress)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return BackupResult(
        site=site.name,
        snapshot_id=summary.snapshot_id,
        reason=reason,
        duration=time.monotonic() - started,
        bytes_read=summary.total_bytes_processed,
        bytes_added=summary.data_added,
        dump_bytes=captured.dump.total_bytes,
        tables=len(captured.dump.tables),
        files=stats.count,
        app_version=site.install.app_version,
        schema_version=schema,
        lossy=manifest.database.lossy,
        unchecked=manifest.database.checksums_note,
    )


def backup_site(config: Config, site: Site, reason: str, progress: ProgressFn) -> BackupResult:
    """Back up a site whose lock the caller holds, between its hooks; records the outcome
    for ``status`` and ``log``."""
    with runs.recording(config.state_dir, site.name, "backup", reason) as entry, \
            hooks.around_backup(site.config.hooks, site.name, reason) as around:
        result = _take(site, reason, progress)
        entry.snapshot = around.snapshot = result.snapshot_id
    return result


def run_backup(
    config: Config, site_name: str | None, reason: str = "manual",
    progress: ProgressFn = no_progress,
) -> BackupResult:
    """Back up one site under its lock; recorded (``log``) even when the site cannot be
    opened (its folder is gone, another run holds its lock); then copied, recorded in
    the repository and told (``notify.announce``)."""
    name, _ = select_site(config, site_name)
    announce.before_run(config, name, "backup")
    started = time.monotonic()
    try:
        with runs.recording(config.state_dir, name, "backup", reason), \
                locked_site(config, name, "backup") as site:
            result = backup_site(config, site, reason, progress)
            if site.config.import_itflow_archives:
                result.imported.extend(import_new(config, site, progress))
    except Exception as exc:
        announce.after_run(config, Outcome.failed(name, "backup", exc,
                                                  time.monotonic() - started))
        raise
    announce.after_run(config, Outcome(name, "backup", True, snapshot_id=result.snapshot_id,
                                       duration=result.duration, bytes_added=result.bytes_added))
    return result
