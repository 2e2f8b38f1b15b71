"""Stored credentials decrypted with the master key (table ``credentials``, or
``logins`` before schema 2.0.0); rows that do not decrypt are counted, never hidden."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pymysql

from flowsafe.errors import ConfigError
from flowsafe.itflow.crypto import CorruptCiphertextError, decrypt_field
from flowsafe.secret import Secret

LAYOUTS = {
    "credentials": "credential",
    "logins": "login",
}


@dataclass(frozen=True)
class Credential:
    """One decrypted credential (client may be empty for company-wide ones)."""

    client: str
    name: str
    uri: str
    username: str
    password: str
    otp_secret: str
    notes: str


@dataclass(frozen=True)
class Decrypted:
    """The credentials that decrypt, and the ids of those that do not."""

    credentials: list[Credential]
    failed: list[int]

    @property
    def total(self) -> int:
        return len(self.credentials) + len(self.failed)


def _text(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, bytes):  # the legacy VARBINARY column
        try:
            return value.decode("ascii")
        except UnicodeDecodeError:
            raise CorruptCiphertextError("credential field: not ASCII ciphertext") from None
    return str(value)


def _table(conn: pymysql.Connection[Any]) -> tuple[str, str]:
    with conn.cursor() as cur:
        cur.execute("SHOW TABLES")
        present = {str(row[0]) for row in cur.fetchall()}
    for table, prefix in LAYOUTS.items():
        if table in present:
            return table, prefix
    raise ConfigError("this database has no credentials (or logins) table: is it ITFlow's?")


def decrypt_all(conn: pymysql.Connection[Any], key: Secret) -> Decrypted:
    """Every stored credential, decrypted with ``key``."""
    table, p = _table(conn)
    with conn.cursor() as cur:
        cur.execute(
            f"SELECT c.{p}_id, COALESCE(cl.client_name, ''), c.{p}_name, c.{p}_uri, "
            f"c.{p}_username, c.{p}_password, c.{p}_otp_secret, c.{p}_note FROM {table} c "
            f"LEFT JOIN clients cl ON cl.client_id = c.{p}_client_id ORDER BY c.{p}_id")
        rows = cur.fetchall()
    good, failed = [], []
    for row in rows:
        try:
            username = decrypt_field(_text(row[4]), key.reveal())
            password = decrypt_field(_text(row[5]), key.reveal())
        except CorruptCiphertextError:
            failed.append(int(row[0]))
            continue
        good.append(Credential(str(row[1]), _text(row[2]), _text(row[3]), username, password,
                               _text(row[6]), _text(row[7])))
    return Decrypted(good, failed)
