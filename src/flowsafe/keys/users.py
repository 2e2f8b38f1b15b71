"""ITFlow accounts and their wrapped copies of the master key: unwrap with a password
(checked against the bcrypt hash first), and rewrap for a new password."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import bcrypt
import pymysql

from flowsafe.errors import ConfigError
from flowsafe.itflow.crypto import unwrap_master_key, wrap_master_key
from flowsafe.secret import Secret


@dataclass(frozen=True)
class Account:
    """One ``users`` row, as far as keys are concerned."""

    user_id: int
    email: str
    password_hash: str
    wrapped: str | None


def find(conn: pymysql.Connection[Any], email: str) -> Account:
    """The ITFlow user with this email (case-insensitive), or a clear error."""
    with conn.cursor() as cur:
        cur.execute("SELECT user_id, user_email, user_password, "
                    "user_specific_encryption_ciphertext FROM users "
                    "WHERE LOWER(user_email) = LOWER(%s)", (email,))
        row = cur.fetchone()
    if row is None:
        raise ConfigError(f"no ITFlow user with email {email}: check the address in "
                          "ITFlow's user list")
    wrapped = row[3].decode() if isinstance(row[3], bytes) else row[3]
    return Account(int(row[0]), str(row[1]), str(row[2]), wrapped or None)


def password_matches(account: Account, password: str) -> bool:
    """PHP's ``password_verify`` for bcrypt hashes ($2y$ is $2b$ to Python's bcrypt)."""
    stored = account.password_hash
    if not stored.startswith(("$2y$", "$2b$", "$2a$")):
        raise ConfigError(f"user {account.email}: the password hash is not bcrypt; this "
                          "ITFlow stores passwords in a way flowsafe does not know")
    normal = "$2b$" + stored[4:]
    return bcrypt.checkpw(password.encode(), normal.encode())


def unwrap(account: Account, password: Secret) -> Secret:
    """The master key from the user's wrapped copy; wrong password says so first."""
    if account.wrapped is None:
        raise ConfigError(f"user {account.email} has no wrapped master key (a client portal "
                          "user, or an account never given access): use an agent account")
    candidates = [password.reveal()]
    if password.reveal().strip() != password.reveal():
        candidates.append(password.reveal().strip())  # the web UI trims before wrapping
    for candidate in candidates:
        if password_matches(account, candidate):
            return Secret(unwrap_master_key(account.wrapped, candidate))
    raise ConfigError(f"wrong password for ITFlow user {account.email}")


def php_hash(password: str) -> str:
    """A bcrypt hash in PHP's ``password_hash`` form (``$2y$``, cost 10)."""
    hashed = bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds=10)).decode()
    return "$2y$" + hashed[4:]


def rewrap(conn: pymysql.Connection[Any], account: Account, key: Secret,
           new_password: Secret) -> None:
    """Give the user a new password and a copy of the key wrapped with it."""
    with conn.cursor() as cur:
        cur.execute("UPDATE users SET user_password = %s, "
                    "user_specific_encryption_ciphertext = %s WHERE user_id = %s",
                    (php_hash(new_password.reveal()),
                     wrap_master_key(key.reveal(), new_password.reveal()), account.user_id))
