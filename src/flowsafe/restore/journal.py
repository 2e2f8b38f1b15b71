"""What a restore or undo is doing, on disk, so a killed run can be put back.

``<state_dir>/restore/<site>/current.json`` exists while a restore or undo runs:
phase ``prepare`` (scratch database and folder being built: production
untouched), ``swap`` (the atomic moves under way: recovery moves them back) or
``done`` (recovery only files it as the rollback state). ``rollback.json`` describes
the state the last restore replaced, kept for ``flowsafe undo`` until purged.
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

from flowsafe.mariadb.connection import DbTarget, connect
from flowsafe.restore.files import landing_path
from flowsafe.restore.swap import DbSwap, DirSwap, quote
from flowsafe.secret import write_private

log = logging.getLogger(__name__)


class Journal(BaseModel):
    """One restore or undo: its swaps and the scratch it builds."""

    model_config = ConfigDict(frozen=True)

    site: str
    action: Literal["restore", "undo"]
    phase: Literal["prepare", "swap", "done"]
    snapshot: str
    started: datetime
    db: DbSwap | None = None
    files: DirSwap | None = None
    work_dir: Path | None = None

    def at(self, phase: Literal["prepare", "swap", "done"]) -> Journal:
        return self.model_copy(update={"phase": phase})

    def inverse(self, started: datetime) -> Journal:
        """The undo of a finished restore: swap the kept state back in."""
        return Journal(
            site=self.site, action="undo", phase="prepare", snapshot=self.snapshot,
            started=started,
            db=DbSwap(live=self.db.live, source=self.db.sink, sink=self.db.source)
            if self.db else None,
            files=DirSwap(live=self.files.live, source=self.files.sink, sink=self.files.source)
            if self.files else None,
        )


def _folder(state_dir: Path, site: str) -> Path:
    return state_dir / "restore" / site


def read(state_dir: Path, site: str, name: str) -> Journal | None:
    """``current`` or ``rollback``, if present."""
    path = _folder(state_dir, site) / f"{name}.json"
    try:
        return Journal.model_validate_json(path.read_text())
    except FileNotFoundError:
        return None


def write(state_dir: Path, name: str, journal: Journal) -> None:
    """Replace the journal file atomically (a kill leaves the old or the new one)."""
    path = _folder(state_dir, journal.site) / f"{name}.json"
    pending = path.with_suffix(".tmp")
    write_private(pending, journal.model_dump_json(indent=2))
    os.replace(pending, path)


def finish(state_dir: Path, journal: Journal) -> None:
    """A finished restore or undo becomes the rollback state."""
    write(state_dir, "rollback", journal.at("done"))
    remove(state_dir, journal.site, "current")


def remove(state_dir: Path, site: str, name: str) -> None:
    (_folder(state_dir, site) / f"{name}.json").unlink(missing_ok=True)


def work_dir(state_dir: Path, site: str) -> Path:
    """A private folder for restored dump files."""
    folder = _folder(state_dir, site) / "work"
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    return folder


def drop_database(target: DbTarget, name: str) -> None:
    """Drop a database if it exists (asking first, so a user without DROP rights on a
    database that was never created gets no error)."""
    with connect(target, database="") as conn, conn.cursor() as cur:
        cur.execute("SELECT 1 FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = %s", (name,))
        if cur.fetchone():
            cur.execute(f"DROP DATABASE {quote(name)}")


def discard_scratch(journal: Journal, target: DbTarget | None) -> None:
    """Remove what a restore built but never swapped in (scratch database and folder)."""
    if journal.action != "restore":
        return
    if journal.db is not None and target is not None:
        drop_database(target, journal.db.source)
    if journal.files is not None:
        shutil.rmtree(journal.files.source, ignore_errors=True)
        shutil.rmtree(landing_path(journal.files.source), ignore_errors=True)
    if journal.work_dir is not None:
        shutil.rmtree(journal.work_dir, ignore_errors=True)


def recover(state_dir: Path, site: str, target: Callable[[], DbTarget]) -> Journal | None:
    """Put back what a killed restore or undo left: production as it was before it.

    The folder comes back first, because the database target is read from the
    site's config.php. Returns the recovered journal, or None if there was nothing.
    """
    journal = read(state_dir, site, "current")
    if journal is None:
        return None
    log.warning("recovering from an interrupted %s of '%s' (%s phase)", journal.action, site,
                journal.phase)
    if journal.phase == "done":
        finish(state_dir, journal)
        return journal
    if journal.phase == "swap" and journal.files is not None:
        journal.files.revert()
    database = target() if journal.db is not None else None
    if journal.phase == "swap" and journal.db is not None and database is not None:
        journal.db.revert(database)
    discard_scratch(journal, database)
    remove(state_dir, site, "current")
    return journal
