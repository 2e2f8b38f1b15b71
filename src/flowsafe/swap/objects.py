"""Views, triggers, routines and events during a swap: they cannot move between databases
(MariaDB error 1450, and 1435 for a table with triggers), so a swap drops them in the
live database and creates the other side's there.

An ``ObjectSet`` is the names of such objects by kind and the script (checked
statements, in order) that creates them: from a snapshot's dump, or read back from
a live database with ``SHOW CREATE``. A snapshot's objects are created with the
DEFINER given (the site's own account), so nothing a dump holds runs with more
rights than the site; objects read from a live database keep the DEFINER they had.
"""

from __future__ import annotations

import re
from typing import Any

import pymysql
from pydantic import BaseModel, ConfigDict

from flowsafe.errors import ToolError
from flowsafe.mariadb import statements
from flowsafe.mariadb.connection import DbTarget, connect
from flowsafe.mariadb.load import Objects
from flowsafe.mariadb.statements import Statement, quote_name

KINDS = ("trigger", "view", "procedure", "function", "event")
_NO_SUCH_TABLE = 1146
_DROP_TABLE = re.compile(rb"\s*DROP\s+TABLE\b", re.IGNORECASE)


class ObjectSet(BaseModel):
    """Objects by kind, and the statements that create them (text as latin-1, so any
    bytes survive the journal's JSON)."""

    model_config = ConfigDict(frozen=True)

    names: dict[str, list[str]] = {}
    script: list[str] = []
    definer: str | None = None  # what the CREATEs run as; None: as written (read from live)

    @property
    def empty(self) -> bool:
        return not any(self.names.get(kind) for kind in KINDS)

    def described(self) -> list[str]:
        """``3 views (a, b, c)``-style phrases, for plans."""
        return [f"{len(names)} {kind}{'s' if len(names) > 1 else ''} ({', '.join(names[:5])}"
                f"{', ...' if len(names) > 5 else ''})"
                for kind in KINDS if (names := self.names.get(kind))]


def from_dump(objects: Objects, names: dict[str, list[str]], definer: str) -> ObjectSet:
    """A loaded snapshot's objects (``names`` from its manifest), to be created as
    ``definer``."""
    scripts = [*objects.triggers, *([objects.routines] if objects.routines else [])]
    return ObjectSet(names={k: list(v) for k, v in names.items() if k in KINDS},
                     script=[s.code.decode("latin-1") for script in scripts
                             for s in script.statements], definer=definer)


def _rows(cur: pymysql.cursors.Cursor, query: str, args: tuple[Any, ...]) -> list[Any]:
    cur.execute(query, args)
    return list(cur.fetchall())


def from_live(target: DbTarget, database: str) -> ObjectSet:
    """The objects ``database`` holds now, as scripts that recreate them as they are."""
    db = quote_name(database)
    names: dict[str, list[str]] = {}
    script: list[str] = []
    # With the database as the session's, SHOW CREATE writes its objects' names unqualified.
    with connect(target, database=database) as conn, conn.cursor() as cur:
        def context(sql_mode: str, charset: str, collation: str) -> None:
            script.extend([f"SET sql_mode = {conn.escape(sql_mode)}",
                           f"SET character_set_client = {conn.escape(charset)}",
                           f"SET collation_connection = {conn.escape(collation)}"])

        for (name,) in _rows(cur, "SELECT TRIGGER_NAME FROM information_schema.TRIGGERS WHERE "
                             "TRIGGER_SCHEMA = %s ORDER BY EVENT_OBJECT_TABLE, ACTION_TIMING, "
                             "EVENT_MANIPULATION, ACTION_ORDER", (database,)):
            row = _rows(cur, f"SHOW CREATE TRIGGER {db}.{quote_name(name)}", ())[0]
            names.setdefault("trigger", []).append(str(name))
            context(row[1], row[3], row[4])
            script.append(str(row[2]))
        for (name,) in _rows(cur, "SELECT TABLE_NAME FROM information_schema.VIEWS WHERE "
                             "TABLE_SCHEMA = %s ORDER BY TABLE_NAME", (database,)):
            row = _rows(cur, f"SHOW CREATE VIEW {db}.{quote_name(name)}", ())[0]
            names.setdefault("view", []).append(str(name))
            context("", row[2], row[3])
            script.append(str(row[1]))
        for name, kind in _rows(cur, "SELECT ROUTINE_NAME, ROUTINE_TYPE FROM "
                                "information_schema.ROUTINES WHERE ROUTINE_SCHEMA = %s "
                                "ORDER BY ROUTINE_TYPE, ROUTINE_NAME", (database,)):
            row = _rows(cur, f"SHOW CREATE {kind} {db}.{quote_name(name)}", ())[0]
            names.setdefault(str(kind).lower(), []).append(str(name))
            context(row[1], row[3], row[4])
            script.append(str(row[2]))
        for (name,) in _rows(cur, "SELECT EVENT_NAME FROM information_schema.EVENTS WHERE "
                             "EVENT_SCHEMA = %s ORDER BY EVENT_NAME", (database,)):
            row = _rows(cur, f"SHOW CREATE EVENT {db}.{quote_name(name)}", ())[0]
            names.setdefault("event", []).append(str(name))
            context(row[1], row[4], row[5])
            script.append(f"SET time_zone = {conn.escape(row[2])}")
            script.append(str(row[3]))
    return ObjectSet(names=names, script=[s.encode().decode("latin-1") for s in script])


def present(target: DbTarget, database: str) -> dict[str, list[str]]:
    """The names of the objects ``database`` holds, by kind."""
    found: dict[str, list[str]] = {}
    queries = {
        "trigger": "SELECT TRIGGER_NAME FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA=%s",
        "view": "SELECT TABLE_NAME FROM information_schema.VIEWS WHERE TABLE_SCHEMA = %s",
        "procedure": "SELECT ROUTINE_NAME FROM information_schema.ROUTINES WHERE "
                     "ROUTINE_SCHEMA = %s AND ROUTINE_TYPE = 'PROCEDURE'",
        "function": "SELECT ROUTINE_NAME FROM information_schema.ROUTINES WHERE "
                    "ROUTINE_SCHEMA = %s AND ROUTINE_TYPE = 'FUNCTION'",
        "event": "SELECT EVENT_NAME FROM information_schema.EVENTS WHERE EVENT_SCHEMA = %s",
    }
    with connect(target, database="") as conn, conn.cursor() as cur:
        for kind, query in queries.items():
            if names := sorted(str(r[0]) for r in _rows(cur, query, (database,))):
                found[kind] = names
    return found


def drop_all(target: DbTarget, database: str) -> None:
    """Drop every view, trigger, routine and event of ``database``."""
    db = quote_name(database)
    with connect(target, database="") as conn, conn.cursor() as cur:
        for kind, names in present(target, database).items():
            for name in names:
                cur.execute(f"DROP {kind.upper()} IF EXISTS {db}.{quote_name(name)}")


def create(target: DbTarget, database: str, objects: ObjectSet) -> None:
    """Run ``objects``' script in ``database``, each statement checked first; CREATEs get
    the set's DEFINER. A view whose table or view is not there yet is tried again after
    the others."""
    definer = objects.definer
    pending = [Statement(text.encode("latin-1"), text.encode("latin-1"), number)
               for number, text in enumerate(objects.script, 1)]
    with connect(target, database=database) as conn:
        for _ in range(len(pending) + 1):
            later: list[Statement] = []
            named = {name for names in objects.names.values() for name in names}
            for statement in pending:
                kind = statements.classify_routines_statement(statement, triggers=True)
                code = statement.code
                if kind.verb == "drop" and (kind.name not in named
                                            or _DROP_TABLE.match(code)):
                    continue  # a dump's DROP ... IF EXISTS of its own objects only
                if kind.verb in KINDS and definer is not None:
                    code = statements.with_definer(statement, definer)
                try:
                    conn.query(code)
                except pymysql.err.MySQLError as exc:
                    if kind.verb == "view" and exc.args and exc.args[0] == _NO_SUCH_TABLE:
                        later.append(statement)
                        continue
                    raise ToolError("mariadb", exc.args[0] if exc.args else 0,
                                    str(exc.args[-1])[:300],
                                    f"creating {kind.verb} '{kind.name}'") from None
            if not later or len(later) == len(pending):
                pending = later
                break
            pending = later
        if pending:
            raise ToolError("mariadb", _NO_SUCH_TABLE, "a view refers to a table or view that "
                            "is not there", f"creating view(s) {len(pending)}")
