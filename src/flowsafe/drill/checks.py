"""The drill's checks on a restored copy: each returns a detail line or raises CheckFailed.

``TableValues`` runs while the database loads: as each table completes, its
``CHECKSUM TABLE`` is compared with the one the backup took inside the dump's own
snapshot, so values that mariadb-dump itself changed (FLOAT digits, cp932 text) are
seen; a table without a usable checksum is re-dumped and its rows' digest compared
instead, and the report says so.
"""

from __future__ import annotations

import shutil
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pymysql

from flowsafe.drill.report import CheckFailed, Skip
from flowsafe.itflow import login_check
from flowsafe.itflow.config_php import rewrite_db_settings
from flowsafe.itflow.crypto import CorruptCiphertextError, decrypt_field
from flowsafe.manifest import DumpFileEntry, Manifest
from flowsafe.mariadb.checksum import checksum
from flowsafe.mariadb.connection import DbTarget, connect
from flowsafe.mariadb.dump import dump_database
from flowsafe.swap import objects
from flowsafe.swap.tables import tables_of


def listing(names: list[str], limit: int = 5) -> str:
    more = f" and {len(names) - limit} more" if len(names) > limit else ""
    return ", ".join(names[:limit]) + more


@dataclass
class TableValues:
    """Per-table value checks, fed by the loader as tables complete."""

    manifest: Manifest
    comparable: bool  # the drill's server runs the version the checksums were taken with
    equal: list[str] = field(default_factory=list)
    differ: list[str] = field(default_factory=list)
    unknown: list[DumpFileEntry] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def on_table(self, entry: DumpFileEntry, conn: pymysql.Connection[Any]) -> None:
        """Called by a loading session once ``entry``'s table is complete."""
        if entry.checksum is None or not self.comparable:
            with self.lock:
                self.unknown.append(entry)
            return
        found = checksum(conn, entry.name)
        conn.commit()
        with self.lock:
            if found == entry.checksum:
                self.equal.append(entry.name)
            else:
                why = "; ".join(entry.lossy) or "values differ from the backed-up database"
                self.differ.append(f"{entry.name} ({why})")

    def result(self, target: DbTarget, work: Path) -> str:
        """The check's line: unknown tables re-dumped now and compared by their rows'
        digest; raises when any table's values differ."""
        redumped = []
        if self.unknown:
            folder = work / "redump"
            fresh = dump_database(target, folder, tables=[e.name for e in self.unknown])
            shutil.rmtree(folder, ignore_errors=True)
            digests = {f.name: f.rows_sha256 for f in fresh.tables}
            for entry in self.unknown:
                if digests.get(entry.name) == entry.rows_sha256:
                    redumped.append(entry.name)
                else:
                    self.differ.append(f"{entry.name} (its rows re-dump differently)")
        if self.differ:
            raise CheckFailed(f"{len(self.differ)} table(s) do not hold the backed-up values: "
                              f"{listing(sorted(self.differ))}")
        detail = f"{len(self.equal)} tables: CHECKSUM TABLE equals the backup's"
        if redumped:
            why = ("the backup's checksums were taken by another MariaDB version"
                   if not self.comparable else "they were written as the dump started")
            detail += (f"; {len(redumped)} compared by re-dumping their rows instead ({why}): "
                       f"{listing(sorted(redumped))}")
        lossy = self.manifest.database.lossy
        if lossy:
            detail += f"; note: {listing(lossy, 3)}"
        return detail


def tables_present(target: DbTarget, manifest: Manifest) -> str:
    expected = {t.name for t in manifest.database.tables}
    present = set(tables_of(target, target.database))
    missing = sorted(expected - present)
    if missing:
        raise CheckFailed(f"missing: {listing(missing)}")
    rows = sum(t.rows for t in manifest.database.tables)
    return f"{len(expected)} tables, {rows} rows (counted as they loaded)"


def objects_present(target: DbTarget, manifest: Manifest) -> str:
    """Every view, trigger, routine, event and sequence of the backup is there."""
    wanted = {k: set(v) for k, v in manifest.database.objects.items()}
    if not wanted:
        raise Skip("the backup holds no views, triggers, routines, events or sequences")
    found = {k: set(v) for k, v in objects.present(target, target.database).items()}
    found["sequence"] = {t.name for t in manifest.database.tables if t.kind == "sequence"} & set(
        tables_of(target, target.database))
    missing = sorted(f"{kind} {name}" for kind, names in wanted.items()
                     for name in names - found.get(kind, set()))
    if missing:
        raise CheckFailed(f"missing: {listing(missing)}")
    return ", ".join(f"{len(names)} {kind}(s)" for kind, names in sorted(wanted.items()))


def schema_version(target: DbTarget, manifest: Manifest) -> str:
    expected = manifest.itflow.schema_version
    if expected is None:
        raise Skip("the manifest records no schema version")
    with connect(target) as conn, conn.cursor() as cur:
        cur.execute("SELECT config_current_database_version FROM settings LIMIT 1")
        row = cur.fetchone()
    found = str(row[0]) if row else None
    if found != expected:
        raise CheckFailed(f"settings says {found}, the manifest {expected}")
    return f"{found}"


def uploads_referenced(target: DbTarget, tree: Path) -> str:
    try:
        with connect(target) as conn, conn.cursor() as cur:
            cur.execute("SELECT file_client_id, file_reference_name FROM files")
            rows = cur.fetchall()
    except pymysql.err.MySQLError as exc:
        raise Skip(f"no files table to check ({exc.args[-1]})") from None
    missing = [f"clients/{client}/{name}" for client, name in rows
               if not (tree / "uploads" / "clients" / str(client) / str(name)).is_file()]
    if missing:
        raise CheckFailed(f"{len(missing)} of {len(rows)} missing: {listing(missing)}")
    return f"{len(rows)} files referenced, all present"


CREDENTIAL_TABLES = (
    ("credentials", "credential_username", "credential_password"),
    ("logins", "login_username", "login_password"),
)


def credentials_decrypt(target: DbTarget, master_key: str) -> str:
    present = set(tables_of(target, target.database))
    found = [names for names in CREDENTIAL_TABLES if names[0] in present]
    if not found:
        raise Skip("no credentials table")
    table, user_column, password_column = found[0]
    with connect(target) as conn, conn.cursor() as cur:
        cur.execute(f"SELECT {user_column}, {password_column} FROM {table}")
        rows = cur.fetchall()
    failed = 0
    for row in rows:
        try:
            for value in row:
                text = value.decode() if isinstance(value, bytes) else str(value or "")
                decrypt_field(text, master_key)
        except CorruptCiphertextError:
            failed += 1
    if failed:
        raise CheckFailed(f"{failed} of {len(rows)} credentials do not decrypt with this key")
    return f"{len(rows)} credentials decrypt"


def login_page(target: DbTarget, socket: str, tree: Path, port: int) -> str:
    """The restored app answers its login page against the restored database (PHP as an
    unprivileged account, see itflow/login_check.py)."""
    if shutil.which("php") is None:
        raise Skip("php is not installed (apt-get install php-cli php-mysql)")
    config = tree / "config.php"
    config.write_text(rewrite_db_settings(config.read_text(), host="localhost", user=target.user,
                                          password=target.password.reveal(),
                                          database=target.database))
    return login_check.check(tree, socket=socket, port=port)
