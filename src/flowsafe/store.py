"""Storing a snapshot of a site, shared by ``backup`` and ``archive import``.

``capture_database`` dumps a database into the staging folder in flowsafe's per-table
form with its checksums (``mariadb/dump.py``, ``mariadb/checksum.py``);
``store_snapshot`` writes the manifest, signs it and runs ``restic backup`` of the
staging folder (and the site tree, for a backup) as one snapshot, tagged for listings.
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from flowsafe import signature
from flowsafe.errors import ConfigError
from flowsafe.manifest import DatabaseEntry, Manifest, database_files
from flowsafe.mariadb.checksum import Bracket
from flowsafe.mariadb.connection import DbTarget, server_version
from flowsafe.mariadb.dump import DumpResult, dump_database
from flowsafe.mariadb.survey import survey
from flowsafe.restic import BackupSummary
from flowsafe.restic import Progress as ResticProgress
from flowsafe.secret import private_dirs
from flowsafe.sites import Site

log = logging.getLogger(__name__)

ProgressFn = Callable[[str, int, int | None], None]


def no_progress(phase: str, done: int, total: int | None) -> None:
    """Default progress sink."""


def restic_version(site: Site) -> str:
    """restic's version (gated), once the site's repository is known to exist."""
    version = ".".join(map(str, site.restic.version()))
    if not site.restic.exists():
        raise ConfigError(
            f"no restic repository at {site.restic.repo.url}: run `flowsafe init` first"
        )
    return version


def prepare_staging(site: Site) -> Path:
    """An empty staging folder at the site's fixed path (stale content removed)."""
    staging = site.staging
    if staging.exists():
        log.info("removing a stale staging folder %s", staging)
        shutil.rmtree(staging)
    private_dirs(staging.parent)
    staging.mkdir(mode=0o700)
    return staging


@dataclass(frozen=True)
class Captured:
    """A finished dump in the staging folder and its manifest entry."""

    dump: DumpResult
    entry: DatabaseEntry


def capture_database(target: DbTarget, staging: Path, progress: ProgressFn,
                     packet: int | None = None) -> Captured:
    """Dump ``target.database`` into ``staging/db`` with each table's checksum as the dump
    saw it; ``packet`` overrides the recorded max_allowed_packet (an import records the
    site's server, not the private one it dumped from)."""
    version = server_version(target)
    surveyed = survey(target)
    bracket = Bracket(target, surveyed.tables)
    try:
        bracket.open()
        dump = dump_database(target, staging / "db",
                             on_bytes=lambda done: progress("dump", done, None),
                             on_section=bracket.close)
        checksums = bracket.wait()
    finally:
        bracket.release()
    files = [f.model_copy(update={"checksum": checksums.get(f.name),
                                  "lossy": surveyed.lossy.get(f.name, [])})
             if f.kind in ("table", "sequence") else f for f in database_files(dump)]
    unknown = [f.name for f in files if f.kind in ("table", "sequence") and f.checksum is None]
    entry = DatabaseEntry(
        name=target.database,
        server_version=version,
        charset=surveyed.charset,
        collation=surveyed.collation,
        max_allowed_packet=surveyed.max_allowed_packet if packet is None else packet,
        longest_statement=dump.longest_statement,
        files=files,
        objects=dump.objects(),
        checksums_note=(f"{len(unknown)} table(s) were written while the dump started and have "
                        f"no checksum: {', '.join(unknown[:5])}") if unknown else None,
    )
    return Captured(dump, entry)


def snapshot_tags(site: Site, manifest: Manifest) -> list[str]:
    """Tags: the site filter, the reason, and versions/size so listings need no reads."""
    size = manifest.database.total_bytes + manifest.files.bytes
    tags = [*site.tags, f"reason:{manifest.reason}", f"bytes:{size}"]
    if manifest.itflow.app_version:
        tags.append(f"app:{manifest.itflow.app_version}")
    if manifest.itflow.schema_version:
        tags.append(f"schema:{manifest.itflow.schema_version}")
    if manifest.archive is not None:
        tags.append(f"archive:{manifest.archive.sha256}")
    return [tag.replace(",", "_") for tag in tags]


def store_snapshot(site: Site, staging: Path, manifest: Manifest, paths: Sequence[Path],
                   excludes: Sequence[str], progress: ProgressFn) -> BackupSummary:
    """Write and sign the manifest into ``staging``, then ``restic backup`` ``paths`` (the
    staging folder first) as one snapshot at the manifest's time."""
    key, _ = signature.ensure_key(site.signing_key_file)
    raw = manifest.write(staging)

    def on_restic(p: ResticProgress) -> None:
        progress("upload", p.bytes_done, p.total_bytes or None)

    return site.restic.backup(
        paths,
        tags=[*snapshot_tags(site, manifest), signature.sign(key, raw)],
        host=manifest.host,
        time=manifest.created,
        excludes=excludes,
        on_progress=on_restic,
    )
