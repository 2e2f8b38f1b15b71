"""``manifest.json``: what one backup captured, so restore and drill can check it.

The manifest travels inside the snapshot (``<staging>/manifest.json``) and is signed
(see ``signature.py``): every dump file is listed with the SHA-256 of each of its
chunks, so a loader checks each chunk before any byte of it reaches a server. It
never holds a secret: the master key appears only as a salted fingerprint.
Format 1 (flowsafe 0.1) manifests are recognised and refused with an explanation.
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, ValidationError

from flowsafe.errors import VerificationError
from flowsafe.mariadb.dump import DumpResult, digest_of
from flowsafe.secret import write_private

FORMAT_VERSION = 2
MANIFEST_NAME = "manifest.json"


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ChunkEntry(_Model):
    """Whole statements of one part of a dump file: offset, size, rows, SHA-256."""

    part: Literal["all", "ddl", "rows", "post"]
    offset: int
    bytes: int
    rows: int
    sha256: str


class DumpFileEntry(_Model):
    """One file of the dump (header, a table or sequence, routines, footer)."""

    kind: Literal["header", "table", "sequence", "routines", "footer"]
    name: str
    file: str  # relative to the staging folder, like "db/tables/clients.sql"
    bytes: int
    rows: int
    chunks: list[ChunkEntry]
    checksum: int | None = None  # CHECKSUM TABLE inside the dump's snapshot, when known
    lossy: list[str] = []  # columns whose values an SQL dump cannot carry exactly

    @property
    def sha256(self) -> str:
        return digest_of(self.chunks)

    @property
    def rows_sha256(self) -> str:
        return digest_of([c for c in self.chunks if c.part == "rows"])


class DatabaseEntry(_Model):
    """The database dump: server, defaults, limits, every file in load order, objects."""

    name: str
    server_version: str
    charset: str
    collation: str
    max_allowed_packet: int
    longest_statement: int
    files: list[DumpFileEntry]
    objects: dict[str, list[str]]  # "view", "trigger", "procedure", ... -> names
    checksums_note: str | None = None

    @property
    def tables(self) -> list[DumpFileEntry]:
        return [f for f in self.files if f.kind in ("table", "sequence")]

    def file_of(self, kind: str) -> DumpFileEntry:
        return next(f for f in self.files if f.kind == kind)

    @property
    def total_bytes(self) -> int:
        return sum(f.bytes for f in self.files)

    @property
    def lossy(self) -> list[str]:
        return [note for f in self.files for note in f.lossy]


class FilesEntry(_Model):
    """The site tree as captured: counts and bytes, what was excluded, who owned it."""

    root: str
    count: int
    bytes: int
    uploads_count: int
    uploads_bytes: int
    excluded: list[str]
    owner: str | None = None  # user name owning the tree's root, for a new server
    group: str | None = None
    # Only ``uploads/`` below ``root`` (an imported ITFlow archive holds no PHP files): a
    # restore brings back the database and uploads/ and leaves the live code alone.
    uploads_only: bool = False


class ItflowEntry(_Model):
    """Versions: the app, its git commit, the schema in use and the one the code expects."""

    app_version: str | None
    git_commit: str | None
    schema_version: str | None
    expected_schema_version: str | None
    installation_id: str | None = None


class ArchiveEntry(_Model):
    """The ITFlow archive an imported snapshot came from (``archive import``)."""

    name: str
    sha256: str  # of the whole file; also the snapshot's ``archive:`` tag
    form: str
    generated: str | None = None  # version.txt's ``Generated:``
    generated_by: str | None = None


class Manifest(_Model):
    """The whole manifest (format version 2)."""

    format: int = FORMAT_VERSION
    site: str
    host: str
    created: datetime  # the snapshot's time (restic backup --time), signed with it
    reason: str
    staging: str
    flowsafe_version: str
    restic_version: str
    itflow: ItflowEntry
    database: DatabaseEntry
    files: FilesEntry
    master_key_fingerprint: str | None = None
    archive: ArchiveEntry | None = None

    def write(self, folder: Path) -> bytes:
        """Write ``manifest.json`` into ``folder``; returns the exact bytes (for signing)."""
        raw = (self.model_dump_json(indent=2) + "\n").encode()
        write_private(folder / MANIFEST_NAME, raw)
        return raw

    @classmethod
    def parse(cls, raw: bytes | str, where: str) -> Manifest:
        """The manifest in ``raw``; a damaged, older or foreign one says so (``where``
        names the snapshot in messages)."""
        try:
            data = json.loads(raw)
        except ValueError:
            raise VerificationError(f"{where}: manifest.json is not JSON (damaged); try an "
                                    "older snapshot") from None
        version = data.get("format") if isinstance(data, dict) else None
        if version == 1:
            raise VerificationError(
                f"{where} was made by flowsafe 0.1 (manifest format 1), which this version "
                "cannot restore safely: restore it with plain restic (README, 'What a "
                "snapshot holds') or take a new backup")
        if version != FORMAT_VERSION:
            raise VerificationError(f"{where}: manifest format {version!r} is not one this "
                                    f"flowsafe reads ({FORMAT_VERSION}): upgrade flowsafe")
        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            first = exc.errors()[0]
            at = ".".join(str(p) for p in first["loc"])
            raise VerificationError(f"{where}: manifest.json is not valid at '{at}' "
                                    f"({first['msg']}); try an older snapshot") from None


def database_files(dump: DumpResult, prefix: str = "db/") -> list[DumpFileEntry]:
    """The manifest entries of a finished dump (files in load order)."""
    return [
        DumpFileEntry(kind=f.kind, name=f.name, file=prefix + f.file, bytes=f.bytes,
                      rows=f.rows, chunks=[ChunkEntry(part=c.part, offset=c.offset,
                                                      bytes=c.bytes, rows=c.rows,
                                                      sha256=c.sha256) for c in f.chunks])
        for f in dump.files
    ]
