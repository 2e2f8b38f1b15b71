"""This machine's record of flowsafe's runs: the last attempt of each action per site (for
``status``) and an append-only, bounded history of every run (for ``flowsafe log``).

Snapshots in the repository say what succeeded; only these records know what
failed, so ``status`` can say "last backup failed: <why>" and ``log`` can list the
nights that went wrong. Both files are 0600 under ``<state_dir>/runs``.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from flowsafe.secret import private_dirs, write_private

log = logging.getLogger(__name__)

HISTORY_FILE = "history.jsonl"
HISTORY_KEEP = 1000  # entries kept when the history is trimmed
HISTORY_MAX_BYTES = 1 << 20  # trimmed once it grows past this


def _folder(state_dir: Path) -> Path:
    return state_dir / "runs"


def _path(state_dir: Path, site: str) -> Path:
    return _folder(state_dir) / f"{site}.json"


def read(state_dir: Path, site: str) -> dict[str, Any]:
    """All recorded actions of a site: ``{action: {time, ok, reason, snapshot, error}}``."""
    try:
        data = json.loads(_path(state_dir, site).read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


@dataclass(frozen=True)
class Run:
    """One finished run of an action on a site."""

    time: str
    site: str
    action: str
    reason: str
    ok: bool
    duration: float
    snapshot: str | None
    error: str | None


@dataclass
class Entry:
    """A run in progress: the caller fills in the snapshot, a problem that raised nothing
    (a drill whose checks failed), or skips the record (a cancelled restore)."""

    reason: str = ""
    snapshot: str | None = None
    error: str | None = None
    skip: bool = False


_ACTIVE: ContextVar[dict[tuple[str, str], Entry] | None] = ContextVar("runs", default=None)


@contextmanager
def recording(state_dir: Path, site: str, action: str, reason: str = "") -> Iterator[Entry]:
    """Record the run of ``action`` on ``site`` when the block ends: ok, or the error that
    ended it (which is raised on), with its duration. Inside a recording of the same
    site and action (a backup that also records while it opens the site), the outer
    entry is yielded and only the outer block records."""
    active = _ACTIVE.get() or {}
    if (site, action) in active:
        yield active[(site, action)]
        return
    entry = Entry(reason=reason)
    token = _ACTIVE.set({**active, (site, action): entry})
    started = datetime.now(UTC)
    clock = time.monotonic()
    try:
        yield entry
    except BaseException as exc:
        entry.error = entry.error or str(exc) or type(exc).__name__
        if not entry.skip:
            _save(state_dir, site, action, entry, started, time.monotonic() - clock)
        raise
    finally:
        _ACTIVE.reset(token)
    if not entry.skip:
        _save(state_dir, site, action, entry, started, time.monotonic() - clock)


def record(state_dir: Path, site: str, action: str, *, ok: bool, reason: str = "",
           snapshot: str | None = None, error: str | None = None,
           time: str | None = None) -> None:
    """Remember the last outcome of ``action`` for ``site`` (no history line): what status
    shows for things that are not runs of their own (a copy, a failed notification)."""
    last = read(state_dir, site)
    last[action] = {"time": time or datetime.now(UTC).isoformat(timespec="seconds"), "ok": ok,
                    "reason": reason, "snapshot": snapshot, "error": error}
    write_private(_path(state_dir, site), json.dumps(last, indent=2) + "\n")


def _save(state_dir: Path, site: str, action: str, entry: Entry, started: datetime,
          duration: float) -> None:
    """Record the run; a state folder that cannot be written (read-only, full) is warned
    about, and neither fails a run that worked nor hides the error of one that failed."""
    try:
        _write_run(state_dir, site, action, entry, started, duration)
    except OSError as exc:
        log.warning("could not record this %s of '%s' in %s (%s): `flowsafe status` and "
                    "`flowsafe log` will not show it", action, site, _folder(state_dir),
                    exc.strerror or exc)


def _write_run(state_dir: Path, site: str, action: str, entry: Entry, started: datetime,
               duration: float) -> None:
    run = Run(time=started.isoformat(timespec="seconds"), site=site, action=action,
              reason=entry.reason, ok=entry.error is None, duration=round(duration, 1),
              snapshot=entry.snapshot, error=entry.error)
    record(state_dir, site, action, ok=run.ok, reason=run.reason, snapshot=run.snapshot,
           error=run.error, time=run.time)
    _append(state_dir, run)


def _append(state_dir: Path, run: Run) -> None:
    """One JSON line per run, appended under an exclusive lock; past the size limit the
    file is rewritten with the newest entries only."""
    path = _folder(state_dir) / HISTORY_FILE
    private_dirs(path.parent)
    for _ in range(3):  # a concurrent trim may replace the file between open and lock
        fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            if os.fstat(fd).st_ino != path.stat().st_ino:
                continue
            size = os.fstat(fd).st_size
            torn = size > 0 and os.pread(fd, 1, size - 1) != b"\n"  # a crash mid-line
            line = json.dumps(asdict(run), ensure_ascii=False) + "\n"
            os.write(fd, ("\n" if torn else "").encode() + line.encode())
            if os.fstat(fd).st_size > HISTORY_MAX_BYTES:
                kept = path.read_bytes().splitlines(keepends=True)[-HISTORY_KEEP:]
                pending = path.with_name(HISTORY_FILE + ".new")
                write_private(pending, b"".join(kept))
                os.replace(pending, path)
            return
        finally:
            os.close(fd)


def history(state_dir: Path, site: str | None = None, limit: int | None = None) -> list[Run]:
    """Recorded runs by start time, oldest first (of one site with ``site``); the newest
    ``limit`` of them."""
    try:
        lines = (_folder(state_dir) / HISTORY_FILE).read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        return []
    runs = []
    for line in lines:
        try:
            run = Run(**json.loads(line))
        except (ValueError, TypeError):
            continue  # a line cut short by a crash
        if site is None or run.site == site:
            runs.append(run)
    runs.sort(key=lambda run: run.time)  # by start: an update before its backups
    return runs[-limit:] if limit else runs
