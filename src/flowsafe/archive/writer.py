"""Writing an ITFlow 26.08 archive: every entry WinZip AES-256, streamed, its SHA-256 kept
for version.txt; and ``uploads.zip`` written from a tar stream of the uploads folder.

The output is created 0600 and exclusively (``create_private``); the caller renames it
into place once it is complete.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import stat
import tarfile
import time
import zipfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, BinaryIO

import pyzipper

from flowsafe.errors import FlowsafeError
from flowsafe.secret import Secret

CHUNK = 1 << 20
ZIP64_FROM = 2 << 30  # entries expected above this are written as ZIP64 from the start
_DOS_EPOCH = 315532800  # 1980-01-01, the earliest time a zip entry can carry


def create_private(path: Path) -> BinaryIO:
    """A new file at ``path``, mode 0600 from the first byte; an existing one is an error."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    return os.fdopen(fd, "wb")


def zip_time(epoch: float) -> tuple[int, int, int, int, int, int]:
    """A zip entry's local date and time (zips cannot hold times before 1980)."""
    moment = time.localtime(max(epoch, _DOS_EPOCH))
    return (moment.tm_year, moment.tm_mon, moment.tm_mday, moment.tm_hour, moment.tm_min,
            moment.tm_sec)


class HashingWriter:
    """A write-only stream that hashes and counts what passes through it."""

    def __init__(self, target: IO[bytes]) -> None:
        self.target = target
        self.sha = hashlib.sha256()
        self.bytes = 0

    def write(self, data: bytes) -> int:
        self.sha.update(data)
        self.bytes += len(data)
        self.target.write(data)
        return len(data)

    def flush(self) -> None:
        self.target.flush()

    def close(self) -> None:
        """Nothing to do: the target belongs to whoever opened it."""


class Sealer:
    """An AES-256 zip being written: entries one after the other, then ``version.txt``."""

    def __init__(self, out: BinaryIO, key: Secret) -> None:
        self.zip = pyzipper.AESZipFile(out, "w", compression=pyzipper.ZIP_DEFLATED,
                                       encryption=pyzipper.WZ_AES)
        self.zip.setpassword(key.reveal().encode("utf-8"))
        self.digests: list[tuple[str, str]] = []

    def __enter__(self) -> Sealer:
        return self

    def __exit__(self, kind: type[BaseException] | None, *_: object) -> None:
        if kind is not None:  # a zip being abandoned: its file is about to be removed
            with contextlib.suppress(ValueError, OSError):
                self.zip.close()

    @contextmanager
    def entry(self, name: str, when: float, expected_bytes: int, *, compress: bool = True
              ) -> Iterator[HashingWriter]:
        """Write entry ``name``; ``expected_bytes`` only decides ZIP64 up front."""
        info = self.zip.zipinfo_cls(name, zip_time(when))
        info.compress_type = pyzipper.ZIP_DEFLATED if compress else pyzipper.ZIP_STORED
        info.external_attr = (stat.S_IFREG | 0o600) << 16
        with self.zip.open(info, "w", force_zip64=expected_bytes > ZIP64_FROM) as handle:
            writer = HashingWriter(handle)
            yield writer
        self.digests.append((name, writer.sha.hexdigest()))

    def close(self, version_text: str, when: float) -> None:
        """Add ``version.txt`` (last, as ITFlow does) and write the zip's directory."""
        with self.entry("version.txt", when, 0) as out:
            out.write(version_text.encode("utf-8"))
        self.zip.close()


@dataclass
class TreeSummary:
    """What went into ``uploads.zip``."""

    files: int = 0
    bytes: int = 0
    skipped: list[str] = field(default_factory=list)  # symlinks and other non-files


def _refuse_name(rel: str) -> None:
    if ".." in rel or rel.startswith(("/", "\\")):
        raise FlowsafeError(
            f"uploads/{rel}: ITFlow's restore refuses an uploads.zip entry whose name contains "
            "'..' (and would stop after replacing the database); rename that file in ITFlow, "
            "back up again, and export the new snapshot")


def zip_tree(tar_stream: IO[bytes], prefix: str, out: HashingWriter,
             on_bytes: Callable[[int], None]) -> TreeSummary:
    """A plain zip of the regular files of a tar stream whose names start with ``prefix``,
    named relative to it, as ITFlow's ``uploads.zip``: files only, symlinks skipped."""
    summary = TreeSummary()
    with tarfile.open(fileobj=tar_stream, mode="r|") as tar, \
            zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as inner:
        for member in tar:
            if not member.name.startswith(prefix) or member.isdir():
                continue
            rel = member.name[len(prefix):]
            if not member.isfile():
                summary.skipped.append(rel)
                continue
            _refuse_name(rel)
            info = zipfile.ZipInfo(rel, zip_time(member.mtime))
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = (stat.S_IFREG | (member.mode & 0o7777)) << 16
            info.file_size = member.size
            source = tar.extractfile(member)
            assert source is not None  # a regular file always has content
            with source, inner.open(info, "w") as target:
                while chunk := source.read(CHUNK):
                    target.write(chunk)
            summary.files += 1
            summary.bytes += member.size
            on_bytes(summary.bytes)
    return summary
