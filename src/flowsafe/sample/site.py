"""The public face of the sample generator: build a site, then age it night by night.

A sample site is an ITFlow-shaped install (PHP skeleton, ``config.php``,
``.git``, ``uploads/``) plus its MariaDB database and account, all
deterministic by seed and linear in ``scale``.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path

from flowsafe.errors import ConfigError
from flowsafe.mariadb.connection import DbTarget, connect
from flowsafe.sample import files, rows, schema
from flowsafe.sample.content import Text
from flowsafe.sample.identity import Identity
from flowsafe.sample.plan import Plan, night, past, stamp
from flowsafe.sample.sql import check_name, create_database, run_sql

BENCH_SCALE = 220.0  # measured: ~1.2 GB dump, ~2.5 GB uploads


@dataclass(frozen=True)
class SampleSite:
    """A built sample site and everything a test needs to know about it."""

    path: Path
    database: str
    db_user: str
    db_password: str
    master_key: str
    users: dict[str, str]
    portal_users: list[str]
    app_version: str
    schema_version: str
    seed: int
    scale: float


def default_db_user(database: str) -> str:
    """``itflow`` for database ``itflow``, else ``itflow_<database>``: sites can share a server."""
    return "itflow" if database == "itflow" else f"itflow_{database}"


def build_site(
    path: Path,
    server: DbTarget,
    *,
    database: str = "itflow",
    seed: int = 1,
    scale: float = 1.0,
    db_user: str | None = None,
) -> SampleSite:
    """Build a sample site in ``path`` (absent or empty) and database ``database`` (replaced).

    ``server`` is root access to the MariaDB server. The site gets its own account
    (``db_user``@localhost, default from ``default_db_user``) with all rights on
    its database.
    """
    user = check_name(db_user or default_db_user(database), "MariaDB user")
    if path.exists() and any(path.iterdir()):
        raise ConfigError(f"{path} is not empty: a sample site needs a new folder")
    identity = Identity.for_seed(seed)
    plan = Plan.for_scale(scale)
    text = Text(seed)
    world = rows.World(text, plan.clients, plan.contacts,
                       tuple(agent.user_id for agent in identity.agents))
    client_files = files.client_files(
        random.Random(f"{seed}:uploads"), text, 1, plan.binary_files, plan.text_files,
        plan.clients, lambda position: stamp(past(position)),
    )
    create_database(server, database, user, identity.db_password)
    run_sql(server.with_database(database),
            rows.build_statements(seed, world, plan, identity, client_files))
    path.mkdir(parents=True, exist_ok=True)
    files.write_all(path, files.skeleton(identity, database, user))
    files.write_all(path, files.other_uploads(random.Random(f"{seed}:other"), text, plan,
                                              identity))
    files.write_all(path, (item.upload for item in client_files))
    return SampleSite(
        path=path,
        database=database,
        db_user=user,
        db_password=identity.db_password,
        master_key=identity.master_key,
        users={agent.email: agent.password for agent in identity.agents},
        portal_users=[user.email for user in identity.users if not user.agent],
        app_version=files.APP_VERSION,
        schema_version=files.SCHEMA_VERSION,
        seed=seed,
        scale=scale,
    )


def table_sizes(server: DbTarget, database: str) -> dict[str, tuple[int, int]]:
    """(row count, highest id) of every sample table."""
    sizes = {}
    with connect(server, database=database) as conn, conn.cursor() as cur:
        for table in schema.TABLES:
            cur.execute(f"SELECT COUNT(*), COALESCE(MAX(`{table.key}`), 0) FROM `{table.name}`")
            found = cur.fetchone()
            assert found is not None
            sizes[table.name] = (int(found[0]), int(found[1]))
    return sizes


def nightly_change(
    site: SampleSite,
    server: DbTarget,
    *,
    day: int,
    new_uploads: int = 10,
    row_fraction: float = 0.01,
) -> None:
    """Night ``day`` (1, 2, ...) of ITFlow activity, deterministic by (seed, day).

    About ``row_fraction`` of all rows change: most are appended (logs,
    app_logs, history, tickets, ticket_replies), the rest update recent tickets
    and a few older clients and credentials. ``new_uploads`` client files (a
    third of them 1-5 MB binaries) arrive with their ``files`` rows.
    """
    if day < 1:
        raise ValueError(f"nights are numbered from 1, not {day}")
    sizes = table_sizes(server, site.database)
    top = {name: highest for name, (_, highest) in sizes.items()}
    changes = max(1, round(sum(count for count, _ in sizes.values()) * row_fraction))
    rng = random.Random(f"{site.seed}:night:{day}")
    text = Text(site.seed)
    agents = tuple(agent.user_id for agent in Identity.for_seed(site.seed).agents)
    world = rows.World(text, top["clients"], top["contacts"], agents)

    def when(position: float) -> str:
        return stamp(night(day, position))

    binaries = (new_uploads + 2) // 3
    uploads = files.client_files(rng, text, top["files"] + 1, binaries, new_uploads - binaries,
                                 top["clients"], when)
    run_sql(server.with_database(site.database),
            rows.night_statements(world, rng, when, top, changes, site.master_key, uploads))
    files.write_all(site.path, (item.upload for item in uploads))
