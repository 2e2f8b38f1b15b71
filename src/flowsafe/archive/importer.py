"""``flowsafe archive import``: ITFlow's own archives taken into the site's repository.

A full archive (26.08 WinZip AES, or the 25.05-26.07 plain zip) is verified first as
``archive inspect`` verifies it (every checksum, every entry name); then ``db.sql`` is
loaded into a private MariaDB (``dbload.py``: checked statements, a throwaway account),
re-dumped in flowsafe's per-table form (``store.capture_database``, as a backup dumps),
``uploads.zip`` unpacked into the staging folder (``unpack.py``), and both stored as an
ordinary signed snapshot (``store.store_snapshot``) with reason ``itflow-archive``, the
archive's own time, and the tag ``archive:<SHA-256 of the file>``, so a second import of
the same file does nothing. The archive holds no PHP files: the snapshot holds the
database and ``uploads/`` only (``files.uploads_only`` in the manifest), and a restore
of it leaves the live code alone. Each entry's digest is compared again while it is
imported, so a file changed after its verification is refused.

db.sql names no database and an archive carries no installation id, so an archive is
told to be another site's by ITFlow's own company (``companies``' first row) in it and
in the live database; refused unless ``--force``. A master-key archive goes into the key
escrow, sealed as ``key escrow`` seals (age recipients or a passphrase); a key other than
the one already escrowed is refused unless ``--force``, the same one is not stored twice.
"""

from __future__ import annotations

import hashlib
import logging
import re
import shutil
import socket
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyzipper

from flowsafe import __version__, scratch
from flowsafe.archive import forms, reader
from flowsafe.archive.dbload import load_db_sql
from flowsafe.archive.inspect import InspectReport, inspect_path, master_key_in
from flowsafe.archive.key import backup_key
from flowsafe.archive.unpack import unpack_uploads
from flowsafe.archive.version_txt import VersionTxt
from flowsafe.archive.writer import create_private
from flowsafe.config import Config
from flowsafe.errors import ConfigError, FlowsafeError, VerificationError
from flowsafe.itflow.site import schema_version_in_use
from flowsafe.keys import escrow, fingerprint
from flowsafe.manifest import ArchiveEntry, FilesEntry, ItflowEntry, Manifest
from flowsafe.mariadb.connection import DbTarget, connect
from flowsafe.mariadb.instance import private_server, servers_folder
from flowsafe.mariadb.statements import quote_name
from flowsafe.secret import Secret
from flowsafe.session import locked_site
from flowsafe.sites import SNAPSHOT_TAG, Site
from flowsafe.store import (
    ProgressFn,
    capture_database,
    prepare_staging,
    restic_version,
    store_snapshot,
)

log = logging.getLogger(__name__)

REASON = "itflow-archive"
WORK_PREFIX = "import-"
ARCHIVE_NAME = re.compile(r"itflow_(\d{8}-\d{6})_(full|master_key)_[A-Za-z0-9_-]+\.zip")
FULL_FORMS = (forms.FULL.id, forms.PLAIN_ZIP.id)

@dataclass(frozen=True)
class ImportOptions:
    """What ``archive import`` was asked to do."""

    files: tuple[Path, ...] = ()
    all: bool = False
    force: bool = False
    key_file: Path | None = None
    recipients: tuple[str, ...] = ()
    passphrase: Secret | None = None

@dataclass
class ImportOutcome:
    """One archive: ``action`` is imported, escrowed, already imported, already escrowed,
    skipped or failed (the last two only in a backup's automatic import)."""

    path: Path
    action: str
    form: str = ""
    snapshot_id: str | None = None
    snapshot_time: datetime | None = None
    tables: int = 0
    rows: int = 0
    uploads_files: int = 0
    uploads_bytes: int = 0
    detail: str = ""

def backup_folder(site: Site) -> Path:
    """Where ITFlow keeps its archives: ``$config_backup_path``, else ``uploads/backups``."""
    configured = site.install.config.backup_path
    return Path(configured) if configured else site.install.path / "uploads" / "backups"

def archives_in(site: Site) -> list[Path]:
    """ITFlow's full and master-key archives in the site's backup folder, oldest first."""
    folder = backup_folder(site)
    if not folder.is_dir():
        return []
    return sorted((p for p in folder.iterdir() if ARCHIVE_NAME.fullmatch(p.name)
                   and p.is_file() and not p.is_symlink()), key=lambda p: p.name)

def file_sha256(path: Path) -> str:
    sha = hashlib.sha256()
    with path.open("rb") as file:
        while chunk := file.read(reader.CHUNK):
            sha.update(chunk)
    return sha.hexdigest()

def archive_time(version: VersionTxt, path: Path) -> datetime:
    """When ITFlow made the archive (version.txt's ``Generated:``, then the file name,
    then its mtime; ITFlow writes local time), to the second, in UTC."""
    stamps = [(version.value("Generated"), "%Y-%m-%d %H:%M:%S")]
    if found := ARCHIVE_NAME.fullmatch(path.name):
        stamps.append((found.group(1), "%Y%m%d-%H%M%S"))
    for text, layout in stamps:
        if text:
            try:
                return datetime.strptime(text, layout).astimezone().astimezone(UTC)
            except ValueError:
                continue
    return datetime.fromtimestamp(int(path.stat().st_mtime), UTC)

def _hashing(chunks: Iterable[bytes], sha: Any) -> Iterator[bytes]:
    for chunk in chunks:
        sha.update(chunk)
        yield chunk

def _same(path: Path, name: str, digest: str, report: InspectReport) -> None:
    verified = next((e.sha256 for e in report.entries if e.name == name), None)
    if digest != verified:
        raise VerificationError(f"{path}: {name} changed after it was verified: refusing it; "
                                "nothing was imported")

def _company(target: DbTarget) -> str | None:
    """ITFlow's own company (the first row of ``companies``), if the database has one."""
    try:
        with connect(target) as conn, conn.cursor() as cur:
            cur.execute("SELECT company_name FROM companies ORDER BY company_id LIMIT 1")
            row = cur.fetchone()
    except FlowsafeError:
        return None
    except Exception as exc:  # a database without ITFlow's tables
        log.debug("no company in %s: %s", target.database, exc)
        return None
    return str(row[0]) if row else None

def _live_packet(site: Site) -> int:
    with connect(site.database) as conn, conn.cursor() as cur:
        cur.execute("SELECT @@max_allowed_packet")
        row = cur.fetchone()
    return int(row[0]) if row else 1 << 24

class _Import:
    """One archive into one site."""

    def __init__(self, config: Config, site: Site, path: Path, options: ImportOptions,
                 progress: ProgressFn) -> None:
        self.config = config
        self.site = site
        self.path = path
        self.options = options
        self.progress = progress
        self.work_parent = config.state_dir / "tmp"

    def key(self) -> Secret:
        return backup_key(self.config, self.site.name, self.options.key_file)

    def run(self) -> ImportOutcome:
        if not self.path.is_file():
            raise ConfigError(f"{self.path} is not a file: give the path of an ITFlow backup "
                              "archive")
        sha = file_sha256(self.path)
        done = self.site.restic.snapshots([SNAPSHOT_TAG, f"site:{self.site.name}",
                                           f"archive:{sha}"])
        if done:
            return ImportOutcome(self.path, "already imported", snapshot_id=done[0].id,
                                 snapshot_time=done[0].time)
        report = inspect_path(self.path, self.key, self.work_parent, self.progress)
        if not report.ok:
            raise VerificationError(f"{report.problems[0]}; nothing was imported")
        if report.form == forms.MASTER_KEY.id:
            return self.master_key(report)
        if report.form not in FULL_FORMS:
            raise ConfigError(f"{self.path} is an {report.label}: import takes full archives "
                              "(db.sql with uploads.zip) and master-key archives; load a "
                              "database-only dump with ITFlow's own restore")
        return self.full(report, sha)

    def _open(self, report: InspectReport) -> Any:
        encrypted = report.form == forms.FULL.id or report.form == forms.MASTER_KEY.id
        return reader.open_zip(self.path, self.key() if encrypted else None)

    def master_key(self, report: InspectReport) -> ImportOutcome:
        with self._open(report) as archive:
            info = archive.getinfo("master_key.txt")
            data = b"".join(reader.stream(archive, info, self.path))
        _same(self.path, "master_key.txt", hashlib.sha256(data).hexdigest(), report)
        found = master_key_in(data.decode("utf-8", "replace"))
        if not found:
            raise VerificationError(f"{self.path}: master_key.txt holds no key line: it is "
                                    "not ITFlow's; nothing was escrowed")
        key = Secret(found)
        restic = self.site.restic
        known = escrow.known_fingerprint(restic, self.site.name)
        outcome = ImportOutcome(self.path, "already escrowed", report.form)
        if known and fingerprint.matches(known, key):
            return outcome
        if known and not self.options.force:
            raise ConfigError(f"{self.path} holds another master key than the one escrowed for "
                              f"site '{self.site.name}': it is another site's archive (or the "
                              "escrow is wrong); nothing was escrowed (--force escrows it)")
        if not self.options.recipients and self.options.passphrase is None:
            raise ConfigError(f"{self.path} is a master-key archive: say how to seal the key "
                              "for the escrow, --age-recipient age1... or --passphrase-file "
                              "FILE (as for `flowsafe key escrow`); nothing was escrowed")
        sealed = escrow.seal(key, list(self.options.recipients), self.options.passphrase)
        outcome.snapshot_id, _ = escrow.save(restic, self.site.name, sealed, key)
        outcome.action = "escrowed"
        return outcome

    def full(self, report: InspectReport, sha: str) -> ImportOutcome:
        version = VersionTxt(report.version)
        when = archive_time(version, self.path)
        restic = restic_version(self.site)
        scratch.clean_stale(self.work_parent, WORK_PREFIX)
        work = scratch.make(self.work_parent, WORK_PREFIX)
        staging = prepare_staging(self.site)
        outcome = ImportOutcome(self.path, "imported", report.form, snapshot_time=when)
        try:
            with self._open(report) as archive:
                schema, captured = self.database(archive, report, staging, outcome)
                uploads = self.uploads(archive, report, work, staging / "site")
            outcome.uploads_files, outcome.uploads_bytes = uploads.files, uploads.bytes
            manifest = Manifest(
                site=self.site.name, host=socket.gethostname(), created=when, reason=REASON,
                staging=str(staging), flowsafe_version=__version__, restic_version=restic,
                itflow=ItflowEntry(app_version=version.value("ITFlow Version"),
                                   git_commit=version.value("Git Commit"),
                                   schema_version=schema, expected_schema_version=None),
                database=captured.entry,
                files=FilesEntry(root=str(staging / "site"), count=uploads.files,
                                 bytes=uploads.bytes, uploads_count=uploads.files,
                                 uploads_bytes=uploads.bytes, excluded=[], uploads_only=True),
                master_key_fingerprint=escrow.known_fingerprint(self.site.restic,
                                                                self.site.name),
                archive=ArchiveEntry(name=self.path.name, sha256=sha, form=report.form,
                                     generated=version.value("Generated"),
                                     generated_by=version.value("Generated By")),
            )
            summary = store_snapshot(self.site, staging, manifest, [staging], [], self.progress)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
            shutil.rmtree(work, ignore_errors=True)
        outcome.snapshot_id = summary.snapshot_id
        return outcome

    def database(self, archive: pyzipper.AESZipFile, report: InspectReport, staging: Path,
                 outcome: ImportOutcome) -> tuple[str | None, Any]:
        name = self.site.database.database
        packet = _live_packet(self.site)
        with private_server(servers_folder(self.config.state_dir)) as server:
            admin = server.target()
            with connect(admin, database="") as conn, conn.cursor() as cur:
                cur.execute(f"CREATE DATABASE {quote_name(name)} CHARACTER SET utf8mb4 "
                            "COLLATE utf8mb4_general_ci")
            sha = hashlib.sha256()
            info = archive.getinfo("db.sql")
            total = info.file_size
            done = [0]

            def chunks() -> Iterator[bytes]:
                for chunk in reader.stream(archive, info, self.path):
                    done[0] += len(chunk)
                    self.progress("Loading db.sql", done[0], total)
                    yield chunk

            loaded = load_db_sql(_hashing(chunks(), sha), admin, name, str(self.path))
            _same(self.path, "db.sql", sha.hexdigest(), report)
            outcome.tables, outcome.rows = loaded.tables, loaded.rows
            target = admin.with_database(name)
            self.check_identity(target)
            with connect(target) as conn:
                schema = schema_version_in_use(conn)
            return schema, capture_database(target, staging, self.progress, packet)

    def check_identity(self, archived: DbTarget) -> None:
        theirs, ours = _company(archived), _company(self.site.database)
        if theirs != ours and not self.options.force:
            raise ConfigError(
                f"{self.path} is an archive of another ITFlow: its company is "
                f"'{theirs or 'none'}', site '{self.site.name}' has '{ours or 'none'}' (db.sql "
                "names no database and archives carry no installation id, so flowsafe compares "
                "ITFlow's own company); import it into its own site, or pass --force; nothing "
                "was imported")

    def uploads(self, archive: pyzipper.AESZipFile, report: InspectReport, work: Path,
                root: Path) -> Any:
        spool = work / "uploads.zip"
        with create_private(spool) as copy:
            digest, _ = reader.digest(archive, archive.getinfo("uploads.zip"), self.path, copy)
        _same(self.path, "uploads.zip", digest, report)
        live = self.site.install.path / "uploads"
        info = live.stat() if live.is_dir() else self.site.install.path.stat()
        root.mkdir(mode=0o700)
        return unpack_uploads(spool, self.path, root / "uploads", (info.st_uid, info.st_gid),
                              info.st_mode & 0o7777)

def import_archives(config: Config, site: Site, paths: Iterable[Path], options: ImportOptions,
                    progress: ProgressFn) -> list[ImportOutcome]:
    """Import ``paths`` into ``site`` (whose lock the caller holds), stopping at the first
    that fails (those before it are kept)."""
    return [_Import(config, site, path, options, progress).run() for path in paths]

def import_new(config: Config, site: Site, progress: ProgressFn) -> list[ImportOutcome]:
    """A backup's ``import_itflow_archives``: every full archive in the site's backup folder
    not imported yet (each failure logged and reported, never the backup's); master-key
    archives are left to ``archive import`` with a sealing option."""
    outcomes = []
    for path in archives_in(site):
        if "_master_key_" in path.name:
            continue
        try:
            outcome = _Import(config, site, path, ImportOptions(), progress).run()
        except FlowsafeError as exc:
            log.warning("could not import ITFlow archive %s: %s", path, exc)
            outcome = ImportOutcome(path, "failed", detail=str(exc))
        if outcome.action != "already imported":
            outcomes.append(outcome)
    return outcomes

def run_import(config: Config, site_name: str | None, options: ImportOptions,
               progress: ProgressFn) -> list[ImportOutcome]:
    """``archive import``: the files given, or (``all``) every archive in the site's backup
    folder, under the site's lock."""
    if bool(options.files) == options.all:
        raise ConfigError("give the archives to import, or --all for every archive in the "
                          "site's backup folder (not both)")
    with locked_site(config, site_name, "import") as site:
        paths = list(options.files) if options.files else archives_in(site)
        if not paths:
            raise ConfigError(f"no ITFlow archives in {backup_folder(site)}: give their paths")
        sealing = bool(options.recipients) or options.passphrase is not None
        skipped = [] if options.files or sealing else [
            ImportOutcome(p, "skipped", forms.MASTER_KEY.id, detail="a master-key archive: "
                          "--age-recipient or --passphrase-file escrows it")
            for p in paths if "_master_key_" in p.name]
        chosen = [p for p in paths if p not in {o.path for o in skipped}]
        return [*import_archives(config, site, chosen, options, progress), *skipped]

OutcomeFn = Callable[[ImportOutcome], None]
