"""``flowsafe backup``: one consistent restic snapshot of a site.

Order: take the site lock; dump the database (one ``--single-transaction``
stream, split per table) into the fixed staging folder; scan the tree; write
the manifest; ``restic backup`` the staging folder and the site tree as one
snapshot; remove the staging folder. A failure at any step writes no snapshot
and leaves no staging folder behind.
"""

from __future__ import annotations

import grp
import logging
import pwd
import shutil
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from flowsafe import __version__, hooks, runs, signature
from flowsafe.config import Config, select_site
from flowsafe.errors import ConfigError
from flowsafe.itflow.site import schema_version_in_use
from flowsafe.keys import escrow
from flowsafe.manifest import DatabaseEntry, FilesEntry, ItflowEntry, Manifest, database_files
from flowsafe.mariadb.checksum import Bracket
from flowsafe.mariadb.connection import connect, server_version
from flowsafe.mariadb.dump import DumpResult, dump_database
from flowsafe.mariadb.survey import Survey, survey
from flowsafe.notify import announce
from flowsafe.notify.outcome import Outcome
from flowsafe.restic import Progress as ResticProgress
from flowsafe.restic import pattern
from flowsafe.scan import TreeStats, scan_tree
from flowsafe.secret import private_dirs
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
    lossy: list[str]  # columns an SQL dump cannot carry exactly
    unchecked: str | None  # tables without a checksum, and why


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
    return [pattern(str(root / rel.strip("/"))) for rel in excludes]


def _database_entry(site: Site, dump: DumpResult, surveyed: Survey, version: str,
                    checksums: dict[str, int | None]) -> DatabaseEntry:
    files = [f.model_copy(update={"checksum": checksums.get(f.name),
                                  "lossy": surveyed.lossy.get(f.name, [])})
             if f.kind in ("table", "sequence") else f for f in database_files(dump)]
    unknown = [f.name for f in files if f.kind in ("table", "sequence") and f.checksum is None]
    return DatabaseEntry(
        name=site.database.database,
        server_version=version,
        charset=surveyed.charset,
        collation=surveyed.collation,
        max_allowed_packet=surveyed.max_allowed_packet,
        longest_statement=dump.longest_statement,
        files=files,
        objects=dump.objects(),
        checksums_note=(f"{len(unknown)} table(s) were written while the dump started and have "
                        f"no checksum: {', '.join(unknown[:5])}") if unknown else None,
    )


def _files_entry(site: Site, stats: TreeStats) -> FilesEntry:
    owner = site.install.path.stat()
    return FilesEntry(
        root=str(site.install.path),
        count=stats.count,
        bytes=stats.bytes,
        uploads_count=stats.uploads_count,
        uploads_bytes=stats.uploads_bytes,
        excluded=list(site.config.exclude),
        owner=_name_of(pwd.getpwuid, owner.st_uid),
        group=_name_of(grp.getgrgid, owner.st_gid),
    )


def _name_of(lookup: Callable[[int], Any], number: int) -> str | None:
    """The user or group name of a number, if this machine has one."""
    try:
        return str(lookup(number)[0])
    except KeyError:
        return None


def prepare_staging(site: Site) -> Path:
    """An empty staging folder at the site's fixed path (stale content removed)."""
    staging = site.staging
    if staging.exists():
        log.info("removing a stale staging folder %s", staging)
        shutil.rmtree(staging)
    private_dirs(staging.parent)
    staging.mkdir(mode=0o700)
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
    surveyed = survey(site.database)
    key, _ = signature.ensure_key(site.signing_key_file)
    staging = prepare_staging(site)
    bracket = Bracket(site.database, surveyed.tables)
    try:
        bracket.open()
        dump = dump_database(site.database, staging / "db",
                             on_bytes=lambda done: progress("dump", done, None),
                             on_section=bracket.close)
        checksums = bracket.wait()
        stats = scan_tree(site.install.path, site.config.exclude)
        progress("scan", stats.count, stats.count)
        manifest = Manifest(
            site=site.name,
            host=socket.gethostname(),
            created=datetime.now(UTC).replace(microsecond=0),
            reason=reason,
            staging=str(staging),
            flowsafe_version=__version__,
            restic_version=restic_version,
            itflow=ItflowEntry(
                app_version=site.install.app_version,
                git_commit=site.install.git_commit,
                schema_version=schema,
                expected_schema_version=site.install.expected_schema_version,
                installation_id=site.install.config.installation_id,
            ),
            database=_database_entry(site, dump, surveyed, version, checksums),
            files=_files_entry(site, stats),
            master_key_fingerprint=escrow.known_fingerprint(site.restic, site.name),
        )
        raw = manifest.write(staging)

        def on_restic(p: ResticProgress) -> None:
            progress("upload", p.bytes_done, p.total_bytes or None)

        summary = site.restic.backup(
            [staging, site.install.path],
            tags=[*snapshot_tags(site, reason, manifest), signature.sign(key, raw)],
            host=manifest.host,
            time=manifest.created,
            excludes=restic_excludes(site.install.path, site.config.exclude),
            on_progress=on_restic,
        )
    finally:
        bracket.release()
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
    progress: ProgressFn = _no_progress,
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
    except Exception as exc:
        announce.after_run(config, Outcome.failed(name, "backup", exc,
                                                  time.monotonic() - started))
        raise
    announce.after_run(config, Outcome(name, "backup", True, snapshot_id=result.snapshot_id,
                                       duration=result.duration, bytes_added=result.bytes_added))
    return result
