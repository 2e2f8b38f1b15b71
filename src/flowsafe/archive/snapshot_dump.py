"""The one place that knows how a snapshot's dump is laid out, for ``db.sql``: which files,
in which order, with which digests, and how to bring them out of the repository.

Everything else in this package works on the ``DumpPart`` list this module returns, so
a change of the manifest's file layout is adapted here alone.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from flowsafe.catalog import staging_path
from flowsafe.manifest import Manifest
from flowsafe.mariadb.load import LineDigest
from flowsafe.restic import Restic, Snapshot


@dataclass(frozen=True)
class DumpPart:
    """One dump file: path below the staging folder, and the manifest's digest (tables)."""

    file: str
    table: str | None = None
    sha256: str | None = None

    def digest(self) -> LineDigest:
        """The digest the manifest's ``sha256`` is of, fed with the file's bytes."""
        return LineDigest()


def dump_parts(manifest: Manifest) -> list[DumpPart]:
    """The snapshot's dump files in load order: header, tables, routines, footer."""
    db = manifest.database
    tables = [DumpPart(t.file, t.name, t.sha256) for t in db.tables]
    return [DumpPart(db.header_file), *tables, DumpPart(db.routines_file),
            DumpPart(db.footer_file)]


def fetch_dump(restic: Restic, snap: Snapshot, site: str, work: Path) -> Path:
    """Restore the snapshot's dump files below ``work``; the folder the parts are relative to."""
    staging = staging_path(snap, site)
    restic.restore(snap.id, work, includes=[f"{staging}/db"])
    return work / staging.lstrip("/")
