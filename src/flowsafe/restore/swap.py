"""The two atomic moves a restore or an undo makes, each detectable after a crash.

A swap moves what is live to an empty *sink* and what is in a non-empty
*source* to live: for the database one multi-table ``RENAME TABLE``, for the
site folder two renames. Because the sink starts empty and the source does not,
the state on disk always says whether a swap happened ("before", "half" for the
folder between its two renames, "after"), so a killed run can be put back.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict

from flowsafe.errors import FlowsafeError
from flowsafe.faults import checkpoint
from flowsafe.mariadb.connection import DbTarget, connect

log = logging.getLogger(__name__)

State = Literal["before", "half", "after"]


def quote(name: str) -> str:
    """A MariaDB identifier in backquotes."""
    return "`" + name.replace("`", "``") + "`"


def tables_of(target: DbTarget, database: str) -> list[str]:
    """Base tables of ``database`` (empty if it does not exist)."""
    with connect(target, database="") as conn, conn.cursor() as cur:
        cur.execute(
            "SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = %s "
            "AND TABLE_TYPE = 'BASE TABLE' ORDER BY TABLE_NAME", (database,))
        return [str(row[0]) for row in cur.fetchall()]


class DbSwap(BaseModel):
    """live -> sink, source -> live, in one RENAME TABLE."""

    model_config = ConfigDict(frozen=True)

    live: str
    source: str
    sink: str

    def state(self, target: DbTarget) -> State:
        if tables_of(target, self.sink) and not tables_of(target, self.source):
            return "after"
        return "before"

    def _rename(self, target: DbTarget, live: str, source: str, sink: str) -> None:
        moves = [f"{quote(live)}.{quote(t)} TO {quote(sink)}.{quote(t)}"
                 for t in tables_of(target, live)]
        moves += [f"{quote(source)}.{quote(t)} TO {quote(live)}.{quote(t)}"
                  for t in tables_of(target, source)]
        if tables_of(target, sink):
            raise FlowsafeError(f"database '{sink}' is not empty: refusing to swap into it")
        if not moves:
            return
        with connect(target, database="") as conn, conn.cursor() as cur:
            cur.execute(f"CREATE DATABASE IF NOT EXISTS {quote(sink)}")
            cur.execute("RENAME TABLE " + ", ".join(moves))

    def apply(self, target: DbTarget) -> None:
        self._rename(target, self.live, self.source, self.sink)

    def revert(self, target: DbTarget) -> None:
        """Put an applied swap back (what was live is live again)."""
        if self.state(target) == "after":
            self._rename(target, self.live, self.sink, self.source)


class DirSwap(BaseModel):
    """live -> sink, source -> live, by two renames in one parent folder."""

    model_config = ConfigDict(frozen=True)

    live: Path
    source: Path
    sink: Path

    def state(self) -> State:
        if self.source.exists() and not self.sink.exists():
            return "before"
        if self.source.exists() and self.sink.exists() and not self.live.exists():
            return "half"
        return "after"

    def apply(self) -> None:
        if self.sink.exists():
            raise FlowsafeError(f"{self.sink} already exists: refusing to swap into it")
        os.rename(self.live, self.sink)
        checkpoint("swap-files-half")
        os.rename(self.source, self.live)

    def revert(self) -> None:
        """Put a half or fully applied swap back."""
        state = self.state()
        if state == "after":
            os.rename(self.live, self.source)
        if state in ("after", "half"):
            os.rename(self.sink, self.live)
