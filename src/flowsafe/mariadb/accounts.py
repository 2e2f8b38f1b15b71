"""The accounts a restore works with: an *admin* that may create databases and accounts
(and does the swap), and a throwaway *load* account that can touch one database only.

Dumps are loaded as the load account (``GRANT ALL ON <db>.*``, nothing else), so
nothing in a dump can reach another database, the server's accounts or its files,
whatever the admin may do. Load accounts are named ``flowsafe_load_<pid>_<random>``:
``drop_stale`` removes those whose flowsafe died (``kill -9``).
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import Any

import pymysql

from flowsafe.errors import ConfigError, FlowsafeError
from flowsafe.mariadb.connection import DbTarget, connect
from flowsafe.mariadb.statements import quote_name
from flowsafe.scratch import pid_alive
from flowsafe.secret import Secret

log = logging.getLogger(__name__)

LOAD_PREFIX = "flowsafe_load_"
_LOAD_NAME = re.compile(rf"{LOAD_PREFIX}(\d+)_[0-9a-f]+")


@dataclass(frozen=True)
class Rights:
    """What an account may do, as far as a restore cares."""

    create_database: bool
    create_user: bool
    global_privileges: bool  # anything beyond USAGE on *.*

    @property
    def admin(self) -> bool:
        return self.create_database and self.create_user


def rights(target: DbTarget) -> Rights:
    """The account's global privileges (``information_schema.USER_PRIVILEGES``)."""
    with connect(target, database="") as conn, conn.cursor() as cur:
        cur.execute("SELECT PRIVILEGE_TYPE, IS_GRANTABLE FROM information_schema.USER_PRIVILEGES "
                    "WHERE GRANTEE = CONCAT(\"'\", SUBSTRING_INDEX(CURRENT_USER(), '@', 1), "
                    "\"'@'\", SUBSTRING_INDEX(CURRENT_USER(), '@', -1), \"'\")")
        found = {str(row[0]): str(row[1]) for row in cur.fetchall()}
    granted = set(found) - {"USAGE"}
    grants = "YES" in found.values()  # WITH GRANT OPTION: may give a load account its rights
    return Rights("CREATE" in granted, "CREATE USER" in granted and grants, bool(granted))


def root_over_socket(target: DbTarget) -> DbTarget | None:
    """root over the local socket (unix_socket authentication, the Debian/Ubuntu default),
    if ``target`` is on this machine and root answers there."""
    if not target.uses_socket:
        return None
    root = replace(target, user="root", password=Secret(""))
    try:
        connect(root, database="").close()
    except FlowsafeError:
        return None
    return root


def choose_admin(site: DbTarget, configured: DbTarget | None) -> DbTarget:
    """The account a restore creates scratch databases and load accounts with: the one the
    config names, else the site's own if it may, else root over the local socket."""
    if configured is not None:
        if not rights(configured).admin:
            raise missing_privileges(configured)
        return configured
    if rights(site).admin:
        return site
    root = root_over_socket(site)
    if root is not None and rights(root).admin:
        return root
    raise missing_privileges(site)


def missing_privileges(target: DbTarget) -> ConfigError:
    return ConfigError(
        f"{target.where()} may not create databases and accounts (CREATE, CREATE USER with "
        "GRANT OPTION), which a restore needs for its scratch database and its load account; "
        "either run flowsafe as root on the database server (root then answers over the "
        "local socket), or name an account that may under [sites.<name>.admin] (user, "
        "password_file, socket)")


def _client_host(conn: pymysql.Connection[Any]) -> str:
    """How the server sees this client's host (``localhost`` over the socket)."""
    with conn.cursor() as cur:
        cur.execute("SELECT SUBSTRING_INDEX(USER(), '@', -1)")
        row = cur.fetchone()
    host = str(row[0]) if row else "localhost"
    return host.split(":")[0] or "localhost"


@contextmanager
def load_account(admin: DbTarget, database: str) -> Iterator[DbTarget]:
    """A fresh account with every right on ``database`` and none elsewhere; dropped after."""
    name = f"{LOAD_PREFIX}{os.getpid()}_{secrets.token_hex(4)}"
    password = secrets.token_urlsafe(24)
    with connect(admin, database="") as conn, conn.cursor() as cur:
        host = _client_host(conn)
        cur.execute("CREATE USER %s@%s IDENTIFIED BY %s", (name, host, password))
        cur.execute(f"GRANT ALL ON {quote_name(database)}.* TO %s@%s", (name, host))
    try:
        yield replace(admin, user=name, password=Secret(password), database=database)
    finally:
        with contextlib.suppress(FlowsafeError), connect(admin, database="") as conn, \
                conn.cursor() as cur:
            cur.execute("DROP USER IF EXISTS %s@%s", (name, host))


def loader(admin: DbTarget, database: str) -> contextlib.AbstractContextManager[DbTarget]:
    """The account to load ``database`` as: a fresh load account when ``admin`` may create
    one; ``admin`` itself only when it has no global privilege (it can reach only the
    databases it was given); else a clear refusal."""
    found = rights(admin)
    if found.create_user:
        return load_account(admin, database)
    if not found.global_privileges:
        return contextlib.nullcontext(admin.with_database(database))
    raise ConfigError(
        f"{admin.where()} has global privileges but may not create a load account limited "
        f"to '{database}': restore as root over the local socket, or as an account without "
        "global privileges")


def drop_stale(admin: DbTarget) -> list[str]:
    """Drop the load accounts of flowsafe processes that are gone."""
    dropped = []
    with connect(admin, database="") as conn, conn.cursor() as cur:
        cur.execute("SELECT User, Host FROM mysql.global_priv WHERE User LIKE %s",
                    (LOAD_PREFIX + "%",))
        for user, host in cur.fetchall():
            match = _LOAD_NAME.fullmatch(str(user))
            if match is None or pid_alive(int(match.group(1))):
                continue
            cur.execute("DROP USER IF EXISTS %s@%s", (user, host))
            dropped.append(str(user))
    if dropped:
        log.warning("dropped %d load account(s) left by a flowsafe that died", len(dropped))
    return dropped


def host_of(admin: DbTarget, user: str) -> str:
    """The host part of account ``user`` (``localhost`` when it has one, or it has none)."""
    with connect(admin, database="") as conn, conn.cursor() as cur:
        cur.execute("SELECT Host FROM mysql.global_priv WHERE User = %s", (user,))
        hosts = sorted(str(row[0]) for row in cur.fetchall())
    return "localhost" if "localhost" in hosts or not hosts else hosts[0]


def create_app_account(admin: DbTarget, database: str, user: str, host: str = "localhost"
                       ) -> Secret:
    """(Re)create ``user``@``host`` with a random 32-character password and every right on
    ``database`` only (the account ITFlow's config.php then uses); returns the password."""
    password = Secret(secrets.token_urlsafe(24)[:32])
    with connect(admin, database="") as conn, conn.cursor() as cur:
        cur.execute("CREATE USER IF NOT EXISTS %s@%s IDENTIFIED BY %s",
                    (user, host, password.reveal()))
        cur.execute("ALTER USER %s@%s IDENTIFIED BY %s", (user, host, password.reveal()))
        cur.execute(f"GRANT ALL ON {quote_name(database)}.* TO %s@%s", (user, host))
    return password
