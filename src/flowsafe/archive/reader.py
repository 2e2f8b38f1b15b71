"""Reading ITFlow's zips: WinZip AES or plain, every entry streamed, nothing read whole.

``open_zip`` opens an archive (a truncated or damaged one is a VerificationError);
``unsafe`` names what is wrong with an entry that must never be extracted (``..``,
absolute paths, symlinks); ``stream`` yields an entry's bytes in chunks while pyzipper
checks its HMAC (AES) or CRC-32 (plain) at the end, and ``digest`` hashes it on the
way, optionally copying it into a file. Every failure is one line naming the entry.
"""

from __future__ import annotations

import hashlib
import re
import stat
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

import pyzipper

from flowsafe.errors import ConfigError, VerificationError
from flowsafe.secret import Secret

CHUNK = 1 << 20
_DRIVE = re.compile(r"[A-Za-z]:")


class WrongKeyError(ConfigError):
    """The backup key does not open the archive."""


def damaged(path: Path, what: str, reason: str) -> VerificationError:
    return VerificationError(f"{path}: {what} is damaged ({reason}): the file was truncated or "
                             "altered; use another copy of the backup")


@contextmanager
def open_zip(path: Path, key: Secret | None = None) -> Iterator[pyzipper.AESZipFile]:
    """The archive at ``path`` opened for reading, with ``key`` set when given."""
    try:
        archive = pyzipper.AESZipFile(path)
    except pyzipper.BadZipFile as exc:
        raise damaged(path, "the zip", f"{exc}; no zip directory at its end") from None
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror}") from None
    with archive:
        if key is not None:
            archive.setpassword(key.reveal().encode("utf-8"))
        yield archive


def is_encrypted(info: pyzipper.ZipInfo) -> bool:
    return bool(info.flag_bits & 0x1)


def is_aes(info: pyzipper.ZipInfo) -> bool:
    return getattr(info, "wz_aes_version", None) is not None


def unsafe(info: pyzipper.ZipInfo) -> str | None:
    """Why an entry must not be extracted (zip slip, a symlink), or None if it is safe."""
    name = info.filename
    if not name or "\x00" in name:
        return f"entry {name!r} has an empty or NUL-containing name"
    if name.startswith(("/", "\\")) or _DRIVE.match(name):
        return f"entry {name!r} has an absolute path"
    if ".." in re.split(r"[/\\]", name):
        return f"entry {name!r} climbs out of its folder with '..'"
    if stat.S_ISLNK(info.external_attr >> 16):
        return f"entry {name!r} is a symbolic link"
    return None


def stream(archive: pyzipper.AESZipFile, info: pyzipper.ZipInfo, path: Path
           ) -> Iterator[bytes]:
    """The entry's bytes, chunk by chunk; its HMAC/CRC is checked when the last is read."""
    try:
        with archive.open(info) as entry:
            while chunk := entry.read(CHUNK):
                yield chunk
    except RuntimeError as exc:
        if "password" not in str(exc):
            raise
        raise WrongKeyError(
            f"wrong backup key for {path} (entry {info.filename} does not open with it): use "
            "$config_backup_key from the config.php of the install that made the archive "
            "(--site NAME, or --backup-key-file FILE)") from None
    except pyzipper.BadZipFile as exc:
        reason = str(exc)
        if "HMAC" in reason:
            reason += ", or the key is wrong"
        raise damaged(path, info.filename, reason) from None
    except (zlib.error, EOFError, NotImplementedError) as exc:
        raise damaged(path, info.filename, str(exc) or type(exc).__name__) from None


def digest(archive: pyzipper.AESZipFile, info: pyzipper.ZipInfo, path: Path,
           copy_to: BinaryIO | None = None) -> tuple[str, int]:
    """(sha256 hex, bytes) of the entry, streamed; optionally copied into ``copy_to``."""
    sha = hashlib.sha256()
    size = 0
    for chunk in stream(archive, info, path):
        sha.update(chunk)
        size += len(chunk)
        if copy_to is not None:
            copy_to.write(chunk)
    return sha.hexdigest(), size
