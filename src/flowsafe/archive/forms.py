"""Which of ITFlow's backup forms a file is, told from its content (the name is only a hint).

Every form ITFlow ever wrote has a name here; a form that cannot be trusted says why,
and anything else is refused as unknown. See the package docstring for the facts.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from flowsafe.errors import ConfigError, VerificationError

SNIFF_BYTES = 64 << 10
ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06")


@dataclass(frozen=True)
class Form:
    """A named form: its id (stable, for JSON), what wrote it, and whether flowsafe trusts it."""

    id: str
    label: str
    encrypted: bool = False
    distrust: str | None = None  # why the content cannot be trusted

    @property
    def trusted(self) -> bool:
        return self.distrust is None


FULL = Form("itflow-26.08-full", "ITFlow 26.08+ full backup (WinZip AES-256)", encrypted=True)
DATABASE = Form("itflow-26.08-database", "ITFlow 26.08+ database backup (WinZip AES-256)",
                encrypted=True)
MASTER_KEY = Form("itflow-26.08-master-key", "ITFlow 26.08+ master key export (WinZip AES-256)",
                  encrypted=True)
PLAIN_ZIP = Form("itflow-25.05-plain-zip", "ITFlow 25.05-26.07 full backup download (plain zip)")
SQL_26 = Form("itflow-26.08-db-sql", "db.sql taken out of an ITFlow 26.08+ archive")
SQL_25 = Form("itflow-2025-sql", "ITFlow 2025 SQL dump (Y-m-d_H-i-s_backup.sql, or a db.sql "
              "taken out of a 25.05-26.07 zip)")
LEGACY_SQL = Form(
    "itflow-legacy-sql", "ITFlow 25.03-or-older SQL dump (YYYY-MM-DD_ITFlow_backup.sql)",
    distrust="ITFlow up to 25.03 wrote these dumps without escaping values and with NULL as "
    "'': quotes, backslashes and line breaks in the data load wrong; flowsafe will not load "
    "it: take a new backup (flowsafe backup)",
)
FORMS = (FULL, DATABASE, MASTER_KEY, PLAIN_ZIP, SQL_26, SQL_25, LEGACY_SQL)

_ENTRIES = {
    frozenset({"db.sql", "uploads.zip", "version.txt"}): FULL,
    frozenset({"db.sql", "version.txt"}): DATABASE,
    frozenset({"master_key.txt", "version.txt"}): MASTER_KEY,
}
_TYPES = {"full": FULL, "database": DATABASE, "master_key": MASTER_KEY}
_LEGACY_INSERT = re.compile(rb'^INSERT INTO [^ (`]+ VALUES\("', re.MULTILINE)


def is_zip(path: Path) -> bool:
    with path.open("rb") as file:
        return file.read(4) in ZIP_MAGIC


def zip_form(path: Path, names: Sequence[str], encrypted: Sequence[bool]) -> Form:
    """The form of a zip from its entry names and which entries are encrypted."""
    shown = ", ".join(names[:6]) or "no entries"
    if not any(encrypted):
        if set(names) == {"db.sql", "uploads.zip", "version.txt"}:
            return PLAIN_ZIP
        raise ConfigError(f"{path} is a zip but not an ITFlow backup (it holds {shown}): "
                          "give an archive ITFlow made")
    if not all(encrypted):
        plain = [n for n, e in zip(names, encrypted, strict=True) if not e]
        raise VerificationError(
            f"{path}: entries {', '.join(plain[:3])} are not encrypted, but ITFlow 26.08 "
            "encrypts every entry; this archive was altered or is not ITFlow's")
    form = _ENTRIES.get(frozenset(names))
    if form is None or len(set(names)) != len(names):
        raise ConfigError(f"{path} is an encrypted zip but not an ITFlow backup (it holds "
                          f"{shown}): an ITFlow 26.08 archive holds db.sql, uploads.zip and "
                          "version.txt (or master_key.txt and version.txt)")
    return form


def typed_form(form: Form, backup_type: str | None) -> Form:
    """The form version.txt's ``Backup Type:`` names; it must agree with the entries."""
    if backup_type is None or not form.encrypted:
        return form
    named = _TYPES.get(backup_type)
    if named is not form:
        raise VerificationError(
            f"version.txt says 'Backup Type: {backup_type}' but the archive holds the entries "
            f"of a {form.label}: it was altered")
    return form


def sql_form(path: Path) -> Form:
    """The form of a SQL file from its first 64 KiB."""
    with path.open("rb") as file:
        head = file.read(SNIFF_BYTES)
    first = head.lstrip().split(b"\n", 1)[0]
    if first.startswith(b"-- ITFlow database backup"):
        return SQL_26
    if first.startswith(b"-- UTF-8 + Foreign Key Safe Dump"):
        return SQL_25
    if first.startswith(b"CREATE TABLE") and (
            b"INSERT INTO" not in head or _LEGACY_INSERT.search(head)):
        return LEGACY_SQL
    if first.startswith((b"-- MariaDB dump", b"-- MySQL dump", b"/*M!999999")):
        raise ConfigError(f"{path} is a mariadb-dump/mysqldump file, not an ITFlow backup: load "
                          "it with the mariadb client")
    raise ConfigError(f"{path} is not a backup form ITFlow ever wrote (not a zip, and not one "
                      "of its SQL dumps): give an archive from ITFlow's Admin > Backup")
