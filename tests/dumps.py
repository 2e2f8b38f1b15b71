"""Test helpers for dumps: load a dump folder back, the way a restore does (checked, as a
load account, objects created after), and snapshot a database's whole content."""

from __future__ import annotations

from pathlib import Path

from flowsafe.manifest import DumpFileEntry, database_files
from flowsafe.mariadb import accounts
from flowsafe.mariadb.connection import DbTarget, connect
from flowsafe.mariadb.dump import DumpResult
from flowsafe.mariadb.load import FolderSource, LoadOptions, LoadResult, load_dump
from flowsafe.swap import objects


def sql(target: DbTarget, *statements: str, args: list[tuple[object, ...]] | None = None) -> None:
    """Run statements; with ``args`` the single statement runs once per tuple."""
    with connect(target) as conn, conn.cursor() as cur:
        if args is not None:
            cur.executemany(statements[0], args)
        else:
            for statement in statements:
                cur.execute(statement)


def entries_of(result: DumpResult) -> list[DumpFileEntry]:
    """The manifest entries of a dump whose folder is the dump folder itself."""
    return database_files(result, prefix="")


def restore_folder(admin: DbTarget, database: str, result: DumpResult, folder: Path,
                   *, jobs: int = 2, defer_from: int = 1 << 20,
                   entries: list[DumpFileEntry] | None = None) -> LoadResult:
    """Create ``database`` and load the dump in ``folder`` into it, objects included."""
    chosen = entries if entries is not None else entries_of(result)
    sql(admin.with_database(""), f"CREATE DATABASE `{database}`")
    with accounts.load_account(admin, database) as loader:
        loaded = load_dump(loader, chosen, FolderSource(folder, chosen),
                           LoadOptions(jobs=jobs, defer_indexes_from=defer_from))
    objects.create(admin, database, objects.from_dump(loaded.objects, result.objects(),
                                                      "CURRENT_USER"))
    return loaded


def content(target: DbTarget) -> dict[str, object]:
    """Every row of every table (history rows of versioned ones too), the CHECKSUM of each,
    and the names of views, triggers, routines, events."""
    with connect(target) as conn, conn.cursor() as cur:
        cur.execute("SELECT TABLE_NAME, TABLE_TYPE FROM information_schema.TABLES WHERE "
                    "TABLE_SCHEMA = %s AND TABLE_TYPE <> 'VIEW' ORDER BY TABLE_NAME",
                    (target.database,))
        tables = [(str(r[0]), str(r[1])) for r in cur.fetchall()]
        state: dict[str, object] = {}
        for table, kind in tables:
            quoted = "`" + table.replace("`", "``") + "`"
            if kind == "SEQUENCE":
                cur.execute(f"SELECT * FROM {quoted}")
                state[table] = cur.fetchall()
                continue
            history = " FOR SYSTEM_TIME ALL" if kind == "SYSTEM VERSIONED" else ""
            cur.execute(f"SELECT * FROM {quoted}{history}")
            state[table] = sorted(cur.fetchall(), key=repr)
            cur.execute(f"CHECKSUM TABLE {quoted} EXTENDED")
            state[f"checksum {table}"] = cur.fetchone()[1]
        state["objects"] = objects.present(target, target.database)
    return state
