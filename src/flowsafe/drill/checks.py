"""The drill's checks on a restored copy: each returns a detail line or raises CheckFailed."""

from __future__ import annotations

import shutil
from pathlib import Path

import pymysql

from flowsafe.drill.report import CheckFailed, Skip
from flowsafe.itflow import login_check
from flowsafe.itflow.config_php import rewrite_db_settings
from flowsafe.itflow.crypto import CorruptCiphertextError, decrypt_field
from flowsafe.manifest import Manifest
from flowsafe.mariadb.connection import DbTarget, connect
from flowsafe.mariadb.dump import dump_database
from flowsafe.restore.swap import quote, tables_of


def _listing(names: list[str], limit: int = 5) -> str:
    more = f" and {len(names) - limit} more" if len(names) > limit else ""
    return ", ".join(names[:limit]) + more


def tables_present(target: DbTarget, manifest: Manifest) -> str:
    expected = {t.name for t in manifest.database.tables}
    present = set(tables_of(target, target.database))
    missing = sorted(expected - present)
    if missing:
        raise CheckFailed(f"missing: {_listing(missing)}")
    return f"{len(expected)} tables"


def row_counts(target: DbTarget, manifest: Manifest) -> str:
    wrong = []
    with connect(target) as conn, conn.cursor() as cur:
        for table in manifest.database.tables:
            cur.execute(f"SELECT COUNT(*) FROM {quote(table.name)}")
            row = cur.fetchone()
            count = int(row[0]) if row else -1
            if count != table.rows:
                wrong.append(f"{table.name} ({count}, backup {table.rows})")
    if wrong:
        raise CheckFailed(f"row counts differ: {_listing(wrong)}")
    return f"{sum(t.rows for t in manifest.database.tables)} rows, all equal"


def table_digests(target: DbTarget, manifest: Manifest, work: Path) -> str:
    fresh = dump_database(target, work / "redump")
    digests = {t.name: t.sha256 for t in fresh.tables}
    shutil.rmtree(work / "redump", ignore_errors=True)
    wrong = [t.name for t in manifest.database.tables if digests.get(t.name) != t.sha256]
    if wrong:
        raise CheckFailed(f"a fresh dump differs from the backup for: {_listing(wrong)}")
    return f"{len(digests)} tables re-dumped, digests equal"


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
        raise CheckFailed(f"{len(missing)} of {len(rows)} missing: {_listing(missing)}")
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
