"""``manifest.json``: what one backup captured, so restore and drill can check it.

The manifest travels inside the snapshot (``<staging>/manifest.json``). It never
holds a secret: the master key appears only as a salted fingerprint.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from pydantic import BaseModel, ConfigDict

from flowsafe.secret import write_private

FORMAT_VERSION = 1
MANIFEST_NAME = "manifest.json"


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TableEntry(_Model):
    """One table's dump file: path relative to the staging folder, size, rows, digest."""

    name: str
    file: str
    bytes: int
    rows: int
    sha256: str


class DatabaseEntry(_Model):
    """The database dump: server, files that frame the tables, the tables."""

    name: str
    server_version: str
    header_file: str
    routines_file: str
    footer_file: str
    tables: list[TableEntry]

    @property
    def total_bytes(self) -> int:
        return sum(t.bytes for t in self.tables)


class FilesEntry(_Model):
    """The site tree as captured: counts and bytes, what was excluded."""

    root: str
    count: int
    bytes: int
    uploads_count: int
    uploads_bytes: int
    excluded: list[str]


class ItflowEntry(_Model):
    """Versions: the app, its git commit, the schema in use and the one the code expects."""

    app_version: str | None
    git_commit: str | None
    schema_version: str | None
    expected_schema_version: str | None


class Manifest(_Model):
    """The whole manifest (format version 1)."""

    format: int = FORMAT_VERSION
    site: str
    host: str
    created: datetime
    reason: str
    staging: str
    flowsafe_version: str
    restic_version: str
    itflow: ItflowEntry
    database: DatabaseEntry
    files: FilesEntry
    master_key_fingerprint: str | None = None

    def write(self, folder: Path) -> Path:
        path = folder / MANIFEST_NAME
        write_private(path, self.model_dump_json(indent=2) + "\n")
        return path

    @classmethod
    def parse(cls, raw: bytes | str) -> Manifest:
        return cls.model_validate_json(raw)
