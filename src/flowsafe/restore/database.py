"""The database side of a restore: scratch database, loading, checks against the manifest."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from pathlib import Path

import pymysql

from flowsafe.errors import ConfigError, VerificationError
from flowsafe.manifest import Manifest
from flowsafe.mariadb.connection import DbTarget, connect, explain
from flowsafe.mariadb.load import TableLoad, load_routines, load_tables
from flowsafe.restore.swap import quote, tables_of

OBJECT_QUERIES = {
    "view": "SELECT TABLE_NAME FROM information_schema.VIEWS WHERE TABLE_SCHEMA = %s",
    "trigger": "SELECT TRIGGER_NAME FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = %s",
    "routine": "SELECT ROUTINE_NAME FROM information_schema.ROUTINES WHERE ROUTINE_SCHEMA = %s",
    "event": "SELECT EVENT_NAME FROM information_schema.EVENTS WHERE EVENT_SCHEMA = %s",
}


def side_name(database: str, role: str) -> str:
    """A fresh database name beside ``database`` (<= 64 characters), e.g. itflow__new_3fa9c1."""
    return f"{database[:40]}__{role}_{secrets.token_hex(3)}"


def create_database(target: DbTarget, name: str) -> None:
    """Create an empty database, or say exactly which privilege is missing."""
    try:
        with connect(target, database="") as conn, conn.cursor() as cur:
            cur.execute(f"CREATE DATABASE {quote(name)} CHARACTER SET utf8mb4 "
                        "COLLATE utf8mb4_general_ci")
    except pymysql.err.OperationalError as exc:
        if exc.args and exc.args[0] == 1044:
            raise ConfigError(
                f"{target.where()} lacks the CREATE privilege needed for the scratch database "
                f"'{name}': restore as a user that may create databases (for example set "
                "user = \"root\" under [sites.<name>.database] to use root over the socket)"
            ) from None
        raise explain(exc, target, name) from None


def stored_objects(target: DbTarget, database: str) -> list[str]:
    """Views, triggers, routines and events of a database, as 'kind name'."""
    found = []
    with connect(target, database="") as conn, conn.cursor() as cur:
        for kind, query in OBJECT_QUERIES.items():
            cur.execute(query, (database,))
            found += [f"{kind} {row[0]}" for row in cur.fetchall()]
    return found


def load_dump(target: DbTarget, folder: Path, manifest: Manifest, *, jobs: int,
              on_bytes: Callable[[int], None] | None = None) -> None:
    """Load a restored dump folder (the snapshot's staging folder) into ``target.database``."""
    db = manifest.database
    tables = [TableLoad.from_entry(t, folder) for t in db.tables]
    load_tables(target, folder / db.header_file, folder / db.footer_file, tables, jobs=jobs,
                on_bytes=on_bytes)
    load_routines(target, folder / db.header_file, folder / db.routines_file,
                  folder / db.footer_file)


def verify_against_manifest(target: DbTarget, manifest: Manifest) -> None:
    """Every table of the manifest is there, no other, each with its exact row count."""
    expected = {t.name: t.rows for t in manifest.database.tables}
    present = set(tables_of(target, target.database))
    missing = sorted(set(expected) - present)
    if missing:
        raise VerificationError(f"table '{missing[0]}' is missing after loading "
                                f"({len(missing)} missing); nothing was swapped")
    extra = sorted(present - set(expected))
    if extra:
        raise VerificationError(f"table '{extra[0]}' is not in the backup but appeared while "
                                "loading; nothing was swapped")
    with connect(target) as conn, conn.cursor() as cur:
        for name, rows in expected.items():
            cur.execute(f"SELECT COUNT(*) FROM {quote(name)}")
            row = cur.fetchone()
            count = int(row[0]) if row else -1
            if count != rows:
                raise VerificationError(f"table '{name}' has {count} rows after loading, the "
                                        f"backup has {rows}; nothing was swapped")
