"""The restore journal of a site, and putting a killed restore or undo back.

``<state_dir>/restore/<site>/journal.json`` holds ``current`` (a restore or undo
under way) and ``rollback`` (what the last completed one replaced, kept for
``flowsafe undo``). Every phase change replaces the whole file by rename, so a
kill leaves the old state or the new one, never two files that disagree.

``current`` is in phase ``prepare`` while the scratch database and folder are
built (production untouched: recovery removes the scratch) or ``swap`` while
the moves run. Recovery reads what is on disk against the journal: a swap whose
every part is done is finished (never reverted), any other is put back; a state
that matches neither is reported, and nothing moves.
"""

from __future__ import annotations

import logging
import os
import shutil
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict

from flowsafe.faults import checkpoint
from flowsafe.mariadb.connection import DbTarget
from flowsafe.secret import private_dirs, write_private
from flowsafe.swap import objects
from flowsafe.swap.folders import DirSwap, identity
from flowsafe.swap.objects import ObjectSet
from flowsafe.swap.tables import DbSwap, InconsistentError, drop_database, tables_of

log = logging.getLogger(__name__)


class Journal(BaseModel):
    """One restore or undo."""

    model_config = ConfigDict(frozen=True)

    site: str
    action: Literal["restore", "undo"]
    phase: Literal["prepare", "swap"]
    snapshot: str
    snapshot_time: datetime
    restored_at: datetime  # when the state this one puts live was first restored
    started: datetime
    scratch_db: str | None = None  # built by the restore: dropped if it never goes live
    scratch_dirs: list[Path] = []
    db: DbSwap | None = None
    old_objects: ObjectSet = ObjectSet()
    new_objects: ObjectSet = ObjectSet()
    files: DirSwap | None = None

    def inverse(self, started: datetime) -> Journal:
        """The undo of a completed restore (or the redo of a completed undo)."""
        return Journal(
            site=self.site, action="undo" if self.action == "restore" else "restore",
            phase="swap", snapshot=self.snapshot, snapshot_time=self.snapshot_time,
            restored_at=self.restored_at, started=started,
            db=self.db.inverse() if self.db else None,
            old_objects=self.new_objects, new_objects=self.old_objects,
            files=self.files.inverse() if self.files else None,
        )


class JournalFile(BaseModel):
    """The file: the operation under way, and the kept rollback state."""

    current: Journal | None = None
    rollback: Journal | None = None


def _path(state_dir: Path, site: str) -> Path:
    return state_dir / "restore" / site / "journal.json"


def read(state_dir: Path, site: str) -> JournalFile:
    try:
        return JournalFile.model_validate_json(_path(state_dir, site).read_text())
    except FileNotFoundError:
        return JournalFile()


def write(state_dir: Path, site: str, state: JournalFile) -> None:
    """Replace the journal atomically (a kill leaves the old or the new one)."""
    path = _path(state_dir, site)
    private_dirs(path.parent)
    pending = path.with_name(f".journal.{os.getpid()}.tmp")
    write_private(pending, state.model_dump_json(indent=2))
    os.replace(pending, path)


def begin(state_dir: Path, entry: Journal) -> None:
    """Journal an operation (its scratch, or its swap) before any of it happens."""
    state = read(state_dir, entry.site)
    write(state_dir, entry.site, state.model_copy(update={"current": entry}))
    checkpoint(f"journal-{entry.phase}")


def _finish(state_dir: Path, entry: Journal, admin: Callable[[], DbTarget]) -> None:
    """The swap is done: it becomes the rollback state, in one write; the database it
    emptied goes."""
    write(state_dir, entry.site, JournalFile(current=None, rollback=entry))
    checkpoint("journal-done")
    _drop_emptied(entry, admin)


def _drop_emptied(entry: Journal, admin: Callable[[], DbTarget]) -> None:
    if entry.db is not None and not tables_of(admin(), entry.db.source):
        drop_database(admin(), entry.db.source)


def _discard(state_dir: Path, entry: Journal, admin: Callable[[], DbTarget]) -> None:
    """Remove what a restore built and never put live; forget the operation."""
    if entry.action == "restore":
        if entry.scratch_db is not None:
            drop_database(admin(), entry.scratch_db)
        for folder in entry.scratch_dirs:
            shutil.rmtree(folder, ignore_errors=True)
    state = read(state_dir, entry.site)
    write(state_dir, entry.site, state.model_copy(update={"current": None}))


def swap(state_dir: Path, entry: Journal, admin: DbTarget) -> None:
    """Check both sides are as journaled, then journal and apply the swap; on any failure
    put production back, then re-raise. A failed check leaves the journal as it was."""
    if entry.db is not None and entry.db.state(admin) != "before":
        raise InconsistentError(f"database '{entry.db.live}' already holds what this swap "
                                "would put there: nothing was moved")
    if entry.files is not None and entry.files.state() != "before":
        raise InconsistentError(f"{entry.files.live} already is what this swap would put "
                                "there: nothing was moved")
    begin(state_dir, entry.model_copy(update={"phase": "swap"}))
    try:
        if entry.db is not None:
            objects.drop_all(admin, entry.db.live)
            checkpoint("swap-objects-dropped")
            entry.db.apply(admin)
            checkpoint("swap-db")
            objects.create(admin, entry.db.live, entry.new_objects)
            checkpoint("swap-objects")
        if entry.files is not None:
            entry.files.apply()
        checkpoint("swap-done")
    except BaseException:
        recover(state_dir, entry.site, lambda: admin, crashed=False)
        raise
    _finish(state_dir, entry, lambda: admin)


def _complete(entry: Journal, admin: Callable[[], DbTarget]) -> bool:
    """Whether every part of a swap is done (then recovery finishes it)."""
    if entry.files is not None and entry.files.state(source_optional=True) != "after":
        return False
    return entry.db is None or entry.db.state(admin()) == "after"


def recover(state_dir: Path, site: str, admin: Callable[[], DbTarget],
            crashed: bool = True) -> Journal | None:
    """Finish or put back what a killed restore or undo left; returns its journal.

    The folder comes back first: the database account is read from the site's
    config.php. Raises ``InconsistentError`` (nothing moved) when what is on disk
    is neither side of the journal.
    """
    state = read(state_dir, site)
    entry = state.current
    if entry is None:
        if state.rollback is not None:  # a kill right after a swap was recorded
            _drop_emptied(state.rollback, admin)
        return None
    (log.warning if crashed else log.debug)(
        "recovering from an interrupted %s of '%s' (%s phase)", entry.action, site, entry.phase)
    if entry.phase == "prepare":
        _discard(state_dir, entry, admin)
        return entry
    if _complete(entry, admin):
        if entry.db is not None:
            objects.drop_all(admin(), entry.db.live)
            objects.create(admin(), entry.db.live, entry.new_objects)
        _finish(state_dir, entry, admin)
        return entry
    if entry.files is not None:
        entry.files.revert()
    if entry.db is not None:
        target = admin()
        entry.db.state(target)
        objects.drop_all(target, entry.db.live)
        entry.db.revert(target)
        objects.create(target, entry.db.live, entry.old_objects)
    _discard(state_dir, entry.model_copy(update={
        "scratch_db": entry.db.source if entry.db else None,
        "scratch_dirs": [entry.files.source] if entry.files else []}), admin)
    return entry


def purge(state_dir: Path, site: str, admin: Callable[[], DbTarget]) -> Journal | None:
    """Delete the kept rollback state (database and folder), after checking they are what
    the journal says they are."""
    state = read(state_dir, site)
    kept = state.rollback
    if kept is None:
        return None
    if kept.db is not None:
        target = admin()
        there = set(tables_of(target, kept.db.sink))
        if there and there != set(kept.db.old):
            raise InconsistentError(
                f"database '{kept.db.sink}' does not hold the tables the journal kept there: "
                "not dropping it; check it by hand, then `flowsafe undo --forget`")
        drop_database(target, kept.db.sink)
    if kept.files is not None:
        found = identity(kept.files.sink)
        if found is not None and found != kept.files.old:
            raise InconsistentError(f"{kept.files.sink} is not the folder the journal kept: not "
                                    "deleting it; check it by hand, then `flowsafe undo "
                                    "--forget`")
        shutil.rmtree(kept.files.sink, ignore_errors=True)
    write(state_dir, site, state.model_copy(update={"rollback": None}))
    return kept


def forget(state_dir: Path, site: str) -> JournalFile:
    """Drop the journal (after a by-hand repair); nothing on disk is touched."""
    state = read(state_dir, site)
    write(state_dir, site, JournalFile())
    return state
