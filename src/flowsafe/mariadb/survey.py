"""What a backup must know about a live database before dumping it, and what it refuses.

Refused, with a message that says why and what to do: a table name with a line
break (mariadb-dump's comments cannot carry it), and tables of engines that keep
their data outside the server. Noted, so the backup's summary and the drill can
say so instead of passing silently: columns whose values no SQL dump carries
exactly (FLOAT, which mariadb-dump writes with 6 significant digits; text in
cp932 or eucjpms, whose round trip through Unicode is not one to one).
"""

from __future__ import annotations

from dataclasses import dataclass

from flowsafe.errors import ConfigError
from flowsafe.mariadb.connection import DbTarget, connect

ENGINES = frozenset({"InnoDB", "MyISAM", "Aria", "MEMORY", "ARCHIVE", "CSV", "SEQUENCE"})
LOSSY_CHARSETS = frozenset({"cp932", "eucjpms"})


@dataclass(frozen=True)
class Survey:
    """The database as the dump will see it."""

    tables: list[str]  # base tables, system-versioned tables and sequences
    charset: str
    collation: str
    max_allowed_packet: int
    version_number: int  # 10.11.19 -> 101119, as executable comments count
    lossy: dict[str, list[str]]  # table -> notes on its lossy columns


def version_number(version: str) -> int:
    """``10.11.19-MariaDB-...`` -> 101119."""
    parts = [*version.split("-", 1)[0].split("."), "0", "0"][:3]
    try:
        major, minor, patch = (int(p) for p in parts)
    except ValueError:
        return 0
    return major * 10000 + minor * 100 + patch


def survey(target: DbTarget) -> Survey:
    """Read the database's tables, defaults and limits; refuse what cannot round-trip."""
    name = target.database
    with connect(target, database="") as conn, conn.cursor() as cur:
        cur.execute("SELECT DEFAULT_CHARACTER_SET_NAME, DEFAULT_COLLATION_NAME FROM "
                    "information_schema.SCHEMATA WHERE SCHEMA_NAME = %s", (name,))
        schema = cur.fetchone()
        if schema is None:
            raise ConfigError(f"database '{name}' does not exist on the server "
                              f"({target.where()}); check $database in config.php")
        cur.execute("SELECT @@max_allowed_packet, VERSION()")
        limits = cur.fetchone()
        assert limits is not None
        cur.execute("SELECT TABLE_NAME, TABLE_TYPE, ENGINE FROM information_schema.TABLES "
                    "WHERE TABLE_SCHEMA = %s AND TABLE_TYPE <> 'VIEW' ORDER BY TABLE_NAME",
                    (name,))
        tables = [(str(t), str(kind), str(engine or "")) for t, kind, engine in cur.fetchall()]
        cur.execute("SELECT TABLE_NAME, COLUMN_NAME, DATA_TYPE, CHARACTER_SET_NAME FROM "
                    "information_schema.COLUMNS WHERE TABLE_SCHEMA = %s AND (DATA_TYPE = "
                    "'float' OR CHARACTER_SET_NAME IN ('cp932', 'eucjpms'))", (name,))
        columns = cur.fetchall()
    for table, _, engine in tables:
        if "\n" in table or "\r" in table:
            raise ConfigError(f"table {table!r} has a line break in its name, which a dump "
                              "cannot carry safely: rename it (RENAME TABLE), then back up")
        if engine and engine not in ENGINES:
            raise ConfigError(f"table '{table}' uses ENGINE={engine}, whose data lives outside "
                              "this server: flowsafe backs up InnoDB, Aria, MyISAM, MEMORY, "
                              "ARCHIVE and CSV tables (change its engine or drop it)")
    lossy: dict[str, list[str]] = {}
    for table, column, data_type, charset in columns:
        note = (f"{table}.{column} is FLOAT: mariadb-dump writes 6 significant digits, so "
                "other values come back rounded" if str(data_type).lower() == "float" else
                f"{table}.{column} is {charset} text: some characters do not survive the "
                "dump's conversion to Unicode")
        lossy.setdefault(str(table), []).append(note)
    return Survey(
        tables=[t for t, _, _ in tables],
        charset=str(schema[0]),
        collation=str(schema[1]),
        max_allowed_packet=int(limits[0]),
        version_number=version_number(str(limits[1])),
        lossy=lossy,
    )
