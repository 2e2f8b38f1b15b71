"""``flowsafe archive inspect``: name an ITFlow backup's form and verify every entry.

Each entry is streamed once through SHA-256 and compared with version.txt; pyzipper
checks each entry's HMAC (AES) or CRC-32 (plain) on the way. ``uploads.zip`` is also
copied into a private scratch file so that its own directory can be read: its file
count and size, and any entry that is unsafe to extract. Nothing is extracted.
"""

from __future__ import annotations

import hashlib
import shutil
import tempfile
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pyzipper

from flowsafe import scratch
from flowsafe.archive import forms, reader, version_txt
from flowsafe.archive.forms import Form
from flowsafe.archive.key import backup_key
from flowsafe.archive.version_txt import VersionTxt
from flowsafe.archive.writer import create_private
from flowsafe.config import Config
from flowsafe.errors import ConfigError, VerificationError
from flowsafe.secret import Secret
from flowsafe.store import ProgressFn

KeyFn = Callable[[], Secret]
WORK_PREFIX = "archive-"
VERSION_LIMIT = 1 << 20  # a version.txt larger than this is not ITFlow's
PHASE = "Verifying archive"


@dataclass
class EntryCheck:
    """One entry: sizes from the zip directory, its digest and what version.txt recorded.

    ``result``: ``ok``, ``mismatch``, ``not recorded``, ``damaged`` or ``unsafe``.
    """

    name: str
    bytes: int
    stored_bytes: int
    encrypted: bool
    sha256: str | None = None
    recorded: str | None = None
    result: str = "ok"
    detail: str = ""


@dataclass
class UploadsListing:
    """What ``uploads.zip`` holds, from its own directory."""

    files: int
    bytes: int
    unsafe: list[str] = field(default_factory=list)


@dataclass
class InspectReport:
    """Everything ``archive inspect`` found; ``problems`` empty means it verified."""

    path: Path
    form: str
    label: str
    bytes: int
    trusted: bool
    version: dict[str, str] = field(default_factory=dict)
    entries: list[EntryCheck] = field(default_factory=list)
    uploads: UploadsListing | None = None
    master_key_length: int | None = None
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def _list_uploads(path: Path, spool: Path) -> UploadsListing:
    try:
        with zipfile.ZipFile(spool) as inner:
            infos = inner.infolist()
    except zipfile.BadZipFile as exc:
        raise reader.damaged(path, "uploads.zip", str(exc)) from None
    listing = UploadsListing(files=0, bytes=0)
    for info in infos:
        problem = reader.unsafe(info)
        if problem is None and reader.is_encrypted(info):
            problem = f"entry {info.filename!r} is encrypted (ITFlow's uploads.zip is plain)"
        if problem:
            listing.unsafe.append(problem)
        if not info.is_dir():
            listing.files += 1
            listing.bytes += info.file_size
    return listing


def master_key_in(text: str) -> str | None:
    """The key line of master_key.txt, if the text is ITFlow's master-key export."""
    lines = [line.strip() for line in text.splitlines()]
    body = [line for line in lines[2:] if line]
    return body[0] if body and lines and lines[0].startswith("ITFlow master") else None


class _Inspection:
    """One pass over one zip: checks fill the report."""

    def __init__(self, path: Path, archive: pyzipper.AESZipFile, report: InspectReport,
                 work: Path, progress: ProgressFn) -> None:
        self.path = path
        self.archive = archive
        self.report = report
        self.work = work
        self.progress = progress
        self.total = sum(i.file_size for i in archive.infolist())
        self.done = 0

    def entry(self, info: pyzipper.ZipInfo) -> EntryCheck:
        return EntryCheck(info.filename, info.file_size, info.compress_size,
                          reader.is_encrypted(info))

    def read_small(self, info: pyzipper.ZipInfo) -> tuple[EntryCheck, str]:
        check = self.entry(info)
        if info.file_size > VERSION_LIMIT:
            raise VerificationError(f"{self.path}: {info.filename} is {info.file_size} bytes, "
                                    "not ITFlow's; the archive was altered")
        data = b"".join(reader.stream(self.archive, info, self.path))
        check.sha256 = hashlib.sha256(data).hexdigest()
        self.advance(len(data))
        return check, data.decode("utf-8", "replace")

    def advance(self, count: int) -> None:
        self.done += count
        self.progress(PHASE, self.done, self.total)

    def verify(self, info: pyzipper.ZipInfo, version: VersionTxt, form: Form) -> EntryCheck:
        check = self.entry(info)
        check.recorded = version.checksum(info.filename)
        spool = self.work / "uploads.zip" if info.filename == "uploads.zip" else None
        try:
            if spool is None:
                check.sha256, _ = reader.digest(self.archive, info, self.path)
            else:
                with create_private(spool) as copy:
                    check.sha256, _ = reader.digest(self.archive, info, self.path, copy)
        except VerificationError as exc:
            check.result, check.detail = "damaged", str(exc)
            self.report.problems.append(str(exc))
            return check
        finally:
            self.advance(info.file_size)
        if check.recorded is None:
            check.result = "not recorded"
            if form.encrypted:
                self.report.problems.append(f"version.txt records no checksum for "
                                            f"{info.filename}")
        elif check.recorded != check.sha256:
            check.result = "mismatch"
            check.detail = f"version.txt says {check.recorded}"
            self.report.problems.append(
                f"{self.path}: the SHA-256 of {info.filename} is not the one in version.txt: the "
                "archive was altered or damaged after ITFlow made it")
        if spool is not None:
            self.report.uploads = _list_uploads(self.path, spool)
            spool.unlink()
            self.report.problems += [f"uploads.zip: {p}" for p in self.report.uploads.unsafe]
        return check

    def run(self, key: KeyFn) -> None:
        infos = self.archive.infolist()
        for info in infos:
            problem = reader.unsafe(info)
            if problem:
                raise VerificationError(f"{self.path}: {problem}: refusing the archive")
        names = [i.filename for i in infos]
        form = forms.zip_form(self.path, names, [reader.is_encrypted(i) for i in infos])
        if form.encrypted:
            self.archive.setpassword(key().reveal().encode("utf-8"))
        by_name = {i.filename: i for i in infos}
        check, text = self.read_small(by_name["version.txt"])
        version = version_txt.parse(text)
        form = forms.typed_form(form, version.backup_type)
        self.report.form, self.report.label = form.id, form.label
        self.report.version = version.fields
        for info in infos:
            if info.filename == "version.txt":
                self.report.entries.append(check)
            elif info.filename == "master_key.txt":
                key_check, key_text = self.read_small(info)
                key_check.recorded = version.checksum(info.filename)
                if key_check.recorded != key_check.sha256:
                    key_check.result = "mismatch" if key_check.recorded else "not recorded"
                    self.report.problems.append(f"master_key.txt: checksum {key_check.result}")
                found = master_key_in(key_text)
                self.report.master_key_length = len(found) if found else None
                self.report.entries.append(key_check)
            else:
                self.report.entries.append(self.verify(info, version, form))
        for listed in version.checksums:
            if listed not in by_name:
                self.report.problems.append(f"version.txt lists {listed}, which the archive "
                                            "does not hold")


def _inspect_sql(path: Path, form: Form, report: InspectReport, progress: ProgressFn) -> None:
    sha = hashlib.sha256()
    done = 0
    with path.open("rb") as file:
        while chunk := file.read(reader.CHUNK):
            sha.update(chunk)
            done += len(chunk)
            progress(PHASE, done, report.bytes)
    report.entries.append(EntryCheck(path.name, report.bytes, report.bytes, False,
                                     sha.hexdigest(), result="not recorded"))
    if form.distrust:
        report.problems.append(f"{path.name}: {form.distrust}")


def inspect_path(path: Path, key: KeyFn, work_parent: Path, progress: ProgressFn
                 ) -> InspectReport:
    """Inspect the archive or dump at ``path``; ``key`` is asked only for encrypted forms."""
    report = InspectReport(path=path, form="", label="", bytes=path.stat().st_size,
                           trusted=True)
    if not forms.is_zip(path):
        form = forms.sql_form(path)
        report.form, report.label, report.trusted = form.id, form.label, form.trusted
        _inspect_sql(path, form, report, progress)
        return report
    scratch.clean_stale(work_parent, WORK_PREFIX)
    work = scratch.make(work_parent, WORK_PREFIX)
    try:
        with reader.open_zip(path) as archive:
            _Inspection(path, archive, report, work, progress).run(key)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return report


def run_inspect(config: Config | None, site: str | None, key_file: Path | None, path: Path,
                progress: ProgressFn) -> InspectReport:
    """``archive inspect``: the key from ``key_file`` or the site's config.php; scratch in
    the state folder (or the system's temp folder when flowsafe is not set up here)."""
    if not path.is_file():
        raise ConfigError(f"{path} is not a file: give the path of an ITFlow backup archive")
    parent = config.state_dir / "tmp" if config else Path(tempfile.gettempdir()) / "flowsafe"
    return inspect_path(path, lambda: backup_key(config, site, key_file), parent, progress)
