"""The database move: every table of the live database to a kept (*sink*) database and
every table of a built (*source*) database to live, in one atomic ``RENAME TABLE``.

The journal records which tables each side must hold, so the state is read from
what is there, never guessed: ``before`` (live holds the old tables, the source
the new ones, the sink nothing), ``after`` (live the new, the sink the old, the
source nothing); anything else is ``InconsistentError``, which says what is where
and moves nothing.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict

from flowsafe.errors import FlowsafeError
from flowsafe.mariadb.connection import DbTarget, connect
from flowsafe.mariadb.statements import quote_name

State = Literal["before", "after"]
TABLE_TYPES = ("BASE TABLE", "SYSTEM VERSIONED", "SEQUENCE")


class InconsistentError(FlowsafeError):
    """What is on disk is not what the journal says: nothing was moved."""


def tables_of(target: DbTarget, database: str) -> list[str]:
    """Tables (base, system-versioned, sequences) of ``database``; empty if it does not exist."""
    with connect(target, database="") as conn, conn.cursor() as cur:
        cur.execute(
            "SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = %s "
            "AND TABLE_TYPE IN %s ORDER BY TABLE_NAME", (database, TABLE_TYPES))
        return [str(row[0]) for row in cur.fetchall()]


def database_exists(target: DbTarget, name: str) -> bool:
    with connect(target, database="") as conn, conn.cursor() as cur:
        cur.execute("SELECT 1 FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = %s", (name,))
        return cur.fetchone() is not None


def drop_database(target: DbTarget, name: str) -> None:
    """Drop a database if it exists (asking first, so an account without DROP rights on a
    database that was never created gets no error)."""
    if database_exists(target, name):
        with connect(target, database="") as conn, conn.cursor() as cur:
            cur.execute(f"DROP DATABASE {quote_name(name)}")


class DbSwap(BaseModel):
    """live -> sink, source -> live; ``old`` and ``new`` are the tables each side holds."""

    model_config = ConfigDict(frozen=True)

    live: str
    source: str
    sink: str
    old: list[str]  # live's tables before the swap
    new: list[str]  # the source's tables

    def inverse(self) -> DbSwap:
        """The swap that puts this one back (what undo does)."""
        return DbSwap(live=self.live, source=self.sink, sink=self.source, old=self.new,
                      new=self.old)

    def state(self, target: DbTarget) -> State:
        live = set(tables_of(target, self.live))
        source = set(tables_of(target, self.source))
        sink = set(tables_of(target, self.sink))
        old, new = set(self.old), set(self.new)
        if live == old and source == new and not sink:
            return "before"
        if live == new and sink == old and not source:
            return "after"
        raise InconsistentError(
            f"the databases are not as the restore journal says: live '{self.live}' has "
            f"{_count(live)} (expected {_count(old)} before or {_count(new)} after the swap), "
            f"'{self.source}' has {_count(source)}, '{self.sink}' has {_count(sink)}; nothing "
            "was moved. Check them by hand (was a database dropped or changed?), then run "
            "`flowsafe undo --forget` to discard the journal")

    def _rename(self, target: DbTarget, live: list[str], source: list[str], into: str,
                out: str) -> None:
        moves = [f"{quote_name(self.live)}.{quote_name(t)} TO {quote_name(into)}.{quote_name(t)}"
                 for t in live]
        moves += [f"{quote_name(out)}.{quote_name(t)} TO {quote_name(self.live)}."
                  f"{quote_name(t)}" for t in source]
        if not moves:
            return
        with connect(target, database="") as conn, conn.cursor() as cur:
            cur.execute(f"CREATE DATABASE IF NOT EXISTS {quote_name(into)}")
            cur.execute("RENAME TABLE " + ", ".join(moves))

    def apply(self, target: DbTarget) -> None:
        """Move, after checking both sides are as journaled."""
        if self.state(target) == "before":
            self._rename(target, self.old, self.new, self.sink, self.source)

    def revert(self, target: DbTarget) -> None:
        """Put an applied swap back, after checking both sides are as journaled."""
        if self.state(target) == "after":
            self._rename(target, self.new, self.old, self.source, self.sink)


def _count(tables: set[str]) -> str:
    return f"{len(tables)} table(s)" if tables else "none"
