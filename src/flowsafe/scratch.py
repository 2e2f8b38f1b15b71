"""Temporary folders owned by one flowsafe process, so that a later run can remove
the ones whose owner died (``kill -9``) and leave alone those still in use or kept."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

from flowsafe.secret import private_dirs

OWNER_FILE = "flowsafe.owner"
KEPT = "kept"  # owner mark of a folder left in place on purpose (drill --keep)


def pid_alive(pid: int) -> bool:
    """Whether a process of this machine has this id."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def make(parent: Path, prefix: str) -> Path:
    """A new private folder under ``parent`` owned by this process."""
    private_dirs(parent)
    folder = Path(tempfile.mkdtemp(prefix=prefix, dir=parent))
    (folder / OWNER_FILE).write_text(f"{os.getpid()}\n")
    return folder


def keep(folder: Path, note: str) -> None:
    """Mark a folder as kept: no later run removes it."""
    (folder / OWNER_FILE).write_text(f"{KEPT} {note}\n")


def clean_stale(parent: Path, prefix: str,
                remove: Callable[[Path], None] = lambda p: shutil.rmtree(p, True)
                ) -> list[Path]:
    """Remove folders under ``parent`` named ``prefix*`` whose owner is gone."""
    removed: list[Path] = []
    if not parent.is_dir():
        return removed
    for folder in parent.glob(prefix + "*"):
        try:
            mark = (folder / OWNER_FILE).read_text().split()[0]
        except (OSError, IndexError):
            mark = ""
        if mark == KEPT or (mark.isdigit() and pid_alive(int(mark))):
            continue
        remove(folder)
        removed.append(folder)
    return removed
