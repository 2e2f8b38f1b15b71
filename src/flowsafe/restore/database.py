"""The database side of a restore: checks before anything is touched, the scratch
database, and loading a snapshot's dump into it straight from the repository.

``build_database`` creates the database (with the snapshot's own character set and
collation) as the admin, then streams the snapshot's dump folder out of restic (one
``restic dump``, read as it arrives) into the loader, which runs as an account
limited to that database (``accounts.loader``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pymysql

from flowsafe.errors import ConfigError
from flowsafe.faults import checkpoint
from flowsafe.manifest import Manifest
from flowsafe.mariadb import accounts
from flowsafe.mariadb.connection import DbTarget, connect, explain
from flowsafe.mariadb.instance import private_server, servers_folder
from flowsafe.mariadb.load import LoadOptions, LoadResult, TableDone, TarSource, load_dump
from flowsafe.mariadb.statements import quote_name
from flowsafe.mariadb.survey import version_number
from flowsafe.restic import Restic, Snapshot
from flowsafe.swap import objects

log = logging.getLogger(__name__)

PACKET_MARGIN = 1 << 20  # over the longest statement: the packet's own header and slack
MAX_PACKET = 1 << 30  # MariaDB's own ceiling for max_allowed_packet


def needed_packet(manifest: Manifest) -> int:
    """The max_allowed_packet the snapshot's longest statement needs."""
    return min(MAX_PACKET, manifest.database.longest_statement + PACKET_MARGIN)


@dataclass(frozen=True)
class Preflight:
    """What the checks found that the plan should say (refusals raise instead)."""

    notes: list[str]


def preflight(admin: DbTarget, manifest: Manifest) -> Preflight:
    """Everything that could stop a database build, checked before anything happens: the
    admin's rights (databases, load accounts) and the server's packet limit."""
    found = accounts.rights(admin)
    if not found.admin:
        raise accounts.missing_privileges(admin)
    notes = []
    with connect(admin, database="") as conn, conn.cursor() as cur:
        cur.execute("SELECT @@GLOBAL.max_allowed_packet")
        row = cur.fetchone()
    limit = int(row[0]) if row else 0
    needed = needed_packet(manifest)
    if limit < needed:
        if not _may_set_globals(admin):
            raise ConfigError(
                f"the snapshot's longest statement is {manifest.database.longest_statement} "
                f"bytes, more than this server's max_allowed_packet ({limit}): set "
                f"max_allowed_packet = {needed // (1 << 20) + 1}M under [mysqld] in the server's "
                "configuration (e.g. /etc/mysql/mariadb.conf.d/50-server.cnf) and restart "
                "MariaDB, or restore as root")
        notes.append(f"max_allowed_packet is raised from {limit} to {needed} bytes while the "
                     "database loads (the snapshot's longest statement needs it), then put back")
    return Preflight(notes)


def _may_set_globals(admin: DbTarget) -> bool:
    with connect(admin, database="") as conn, conn.cursor() as cur:
        try:
            cur.execute("SET GLOBAL max_allowed_packet = @@GLOBAL.max_allowed_packet")
        except pymysql.err.OperationalError:
            return False
    return True


@contextmanager
def packet_limit(admin: DbTarget, needed: int) -> Iterator[None]:
    """Raise the server's max_allowed_packet to ``needed`` for new sessions while the block
    runs (preflight checked it may), and put the old value back after."""
    with connect(admin, database="") as conn, conn.cursor() as cur:
        cur.execute("SELECT @@GLOBAL.max_allowed_packet")
        row = cur.fetchone()
        old = int(row[0]) if row else needed
        if old < needed:
            cur.execute("SET GLOBAL max_allowed_packet = %s", (needed,))
    try:
        yield
    finally:
        if old < needed:
            with connect(admin, database="") as conn, conn.cursor() as cur:
                cur.execute("SET GLOBAL max_allowed_packet = %s", (old,))


def create_database(admin: DbTarget, name: str, manifest: Manifest) -> None:
    """Create an empty database with the snapshot's default character set and collation."""
    db = manifest.database
    try:
        with connect(admin, database="") as conn, conn.cursor() as cur:
            cur.execute(f"CREATE DATABASE {quote_name(name)} CHARACTER SET "
                        f"{quote_name(db.charset)} COLLATE {quote_name(db.collation)}")
    except pymysql.err.MySQLError as exc:
        if exc.args and exc.args[0] == 1007:
            raise ConfigError(f"database '{name}' already exists ({admin.where()}): choose "
                              "another name, or drop it first if it is yours to drop") from None
        if exc.args and exc.args[0] == 1044:
            raise accounts.missing_privileges(admin) from None
        raise explain(exc, admin, name) from None


ProgressFn = Callable[[str, int, int | None], None]


def build_database(restic: Restic, snap: Snapshot, staging: str, manifest: Manifest,
                   admin: DbTarget, database: str, *, jobs: int, progress: ProgressFn,
                   on_table: TableDone | None = None, create: bool = True) -> LoadResult:
    """Create ``database`` (unless ``create`` is False: then it must exist, empty) and load
    the snapshot's dump into it; views, triggers and routines come back in the result."""
    if create:
        create_database(admin, database, manifest)
    total = manifest.database.total_bytes
    options = LoadOptions(jobs=jobs, on_table=on_table,
                          on_bytes=lambda done: progress("load", done, total))
    version = version_number(manifest.database.server_version)
    with packet_limit(admin, needed_packet(manifest)), \
            accounts.loader(admin, database) as loader, \
            restic.dump_stream(snap.id, f"{staging}/db") as stream:
        result = load_dump(loader, manifest.database.files, TarSource(stream, staging), options,
                           version or 101100)
    checkpoint("db-load")
    return result


@contextmanager
def private_copy(restic: Restic, snap: Snapshot, staging: str, manifest: Manifest,
                 state_dir: Path, progress: ProgressFn) -> Iterator[DbTarget]:
    """A snapshot's database in a private MariaDB (views and routines as the server's
    root), for reading it without touching production; stopped after the block."""
    packet = max(manifest.database.max_allowed_packet, needed_packet(manifest))
    with private_server(servers_folder(state_dir), packet=packet) as server:
        admin = server.target()
        name = manifest.database.name
        result = build_database(restic, snap, staging, manifest, admin, name, jobs=2,
                                progress=progress)
        objects.create(admin, name, objects.from_dump(result.objects, manifest.database.objects,
                                                      "CURRENT_USER"))
        yield admin.with_database(name)
