"""Unpacking ITFlow's ``uploads.zip`` (a plain zip, spooled to a private file) into a new
folder: every entry checked before the first byte is written (no ``..``, no absolute
path, no symlink, no encrypted entry), files created exclusively without following
links, each streamed through zipfile's CRC check."""

from __future__ import annotations

import os
import shutil
import zipfile
from dataclasses import dataclass
from pathlib import Path

from flowsafe.archive import reader
from flowsafe.errors import VerificationError


@dataclass(frozen=True)
class Unpacked:
    files: int
    bytes: int


def _refusal(archive: Path, info: zipfile.ZipInfo) -> str | None:
    problem = reader.unsafe(info)
    if problem is None and info.flag_bits & 0x1:
        problem = f"entry {info.filename!r} is encrypted (ITFlow's uploads.zip is plain)"
    return f"{archive}: uploads.zip: {problem}: refusing the archive" if problem else None


def unpack_uploads(spool: Path, archive: Path, dest: Path, owner: tuple[int, int] | None,
                   mode: int) -> Unpacked:
    """Extract the zip at ``spool`` into the new folder ``dest`` (folders get ``mode``,
    files the same without execute bits; both ``owner`` (uid, gid) when given)."""
    try:
        inner = zipfile.ZipFile(spool)
    except zipfile.BadZipFile as exc:
        raise reader.damaged(archive, "uploads.zip", str(exc)) from None
    with inner:
        infos = inner.infolist()
        for info in infos:
            if problem := _refusal(archive, info):
                raise VerificationError(problem)
        dest.mkdir(mode=0o700)
        files = size = 0
        for info in infos:
            target = dest / info.filename
            try:
                if info.is_dir():
                    target.mkdir(parents=True, exist_ok=True)
                    continue
                target.parent.mkdir(parents=True, exist_ok=True)
                fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW,
                             mode & 0o666)
                with os.fdopen(fd, "wb") as out, inner.open(info) as source:
                    shutil.copyfileobj(source, out, reader.CHUNK)
            except zipfile.BadZipFile as exc:
                raise reader.damaged(archive, f"uploads.zip entry {info.filename}",
                                     str(exc)) from None
            except OSError as exc:
                raise VerificationError(f"{archive}: uploads.zip entry {info.filename!r} cannot "
                                        f"be unpacked ({exc.strerror}): refusing the archive"
                                        ) from None
            files += 1
            size += info.file_size
    for folder, dirs, names in os.walk(dest):
        os.chmod(folder, mode)
        for name in (*dirs, *names):
            if owner is not None:
                os.chown(Path(folder) / name, *owner, follow_symlinks=False)
        if owner is not None:
            os.chown(folder, *owner)
    return Unpacked(files, size)
