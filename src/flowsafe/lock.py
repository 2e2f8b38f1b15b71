"""Per-site run locks: one flowsafe writer per site at a time, crash-aware.

The lock is ``flock`` on ``<state_dir>/locks/<site>.lock``: the kernel drops it
when flowsafe dies, even by ``kill -9``. The file keeps a line saying who held it;
a clean exit clears that line, so the next holder can tell that the previous
run crashed and tidy up after it (stale restic lock, staging folder).
"""

from __future__ import annotations

import fcntl
import json
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from flowsafe.errors import ConfigError, LockedError
from flowsafe.secret import private_dirs


@dataclass(frozen=True)
class Held:
    """The lock we hold, and whether the previous holder crashed."""

    site: str
    action: str
    previous_crashed: bool
    previous: dict[str, object]


@contextmanager
def site_lock(state_dir: Path, site: str, action: str) -> Iterator[Held]:
    """Hold the site's lock for ``action`` or raise LockedError naming the holder."""
    folder = state_dir / "locks"
    path = folder / f"{site}.lock"
    try:
        private_dirs(folder)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    except OSError as exc:
        raise ConfigError(f"cannot open the site lock {path}: {exc.strerror}: flowsafe's state "
                          f"folder {state_dir} must be writable (state_dir in the config)"
                          ) from None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _read(fd)
            raise LockedError(
                f"another flowsafe {holder.get('action', 'run')} of site '{site}' is running "
                f"(pid {holder.get('pid', '?')}, since {holder.get('since', '?')}); "
                "wait for it to finish, then try again"
            ) from None
        previous = _read(fd)
        _write(fd, {"pid": os.getpid(), "action": action,
                    "since": time.strftime("%Y-%m-%d %H:%M:%S")})
        try:
            yield Held(site, action, bool(previous), previous)
        finally:
            _write(fd, {})
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def _read(fd: int) -> dict[str, object]:
    os.lseek(fd, 0, os.SEEK_SET)
    raw = os.read(fd, 4096)
    try:
        data = json.loads(raw) if raw.strip() else {}
    except ValueError:
        return {"action": "run"}
    return data if isinstance(data, dict) else {}


def _write(fd: int, data: dict[str, object]) -> None:
    os.ftruncate(fd, 0)
    os.pwrite(fd, json.dumps(data).encode() if data else b"", 0)
