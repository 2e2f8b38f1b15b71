"""The split dump against a real private MariaDB: restore, per-table loads, digests, failures."""

from __future__ import annotations

import io
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from flowsafe import execute
from flowsafe.errors import FlowsafeError, ToolError
from flowsafe.mariadb.connection import DbTarget, client_options, connect
from flowsafe.mariadb.dump import (
    DUMP_OPTIONS,
    DumpIncompleteError,
    DumpResult,
    digest_file,
    dump_command,
    dump_database,
    split_stream,
    table_file_name,
)
from flowsafe.secret import Secret

ODD_TABLE = "facturación 2024"
BIG_ROWS = 20_000


def sql(target: DbTarget, *statements: str, args: list[tuple[object, ...]] | None = None) -> None:
    """Run statements; with ``args`` the single statement runs once per tuple."""
    with connect(target) as conn, conn.cursor() as cur:
        if args is not None:
            cur.executemany(statements[0], args)
        else:
            for statement in statements:
                cur.execute(statement)


def populate(target: DbTarget) -> None:
    sql(
        target,
        "CREATE TABLE clients (id INT PRIMARY KEY AUTO_INCREMENT, name VARCHAR(200), "
        "notes TEXT, born DATE)",
        "CREATE TABLE audit (client_id INT, action VARCHAR(20))",
        "CREATE TABLE files (id INT PRIMARY KEY, data VARBINARY(300), body LONGTEXT)",
        "CREATE TABLE big (id INT PRIMARY KEY, label VARCHAR(100), amount DECIMAL(12,2))",
        "CREATE TABLE hidden (id INT PRIMARY KEY, v INT, extra INT INVISIBLE DEFAULT 7)",
        f"CREATE TABLE `{ODD_TABLE}` (id INT PRIMARY KEY, total DOUBLE)",
        "CREATE TABLE empty_one (id INT PRIMARY KEY)",
    )
    sql(
        target,
        "INSERT INTO clients (name, notes, born) VALUES (%s, %s, %s)",
        args=[
            ("Zoë Ünïcødé 😀 日本", "line one\nline two\r\n\ttab", "1980-02-29"),
            ('O\'Brien "quoted" back\\slash', None, None),
            (None, "INSERT INTO `clients` VALUES (1);\n--\n-- Table structure for table `x`", None),
            ("", "", "2024-01-01"),
        ],
    )
    sql(
        target,
        "INSERT INTO files VALUES (%s, %s, %s)",
        args=[
            (1, bytes(range(256)), "x" * 300_000 + "\n" + "ü" * 1000),
            (2, b"\x00\n\r\x1a'\"\\", None),
            (3, None, ""),
        ],
    )
    sql(
        target,
        "INSERT INTO big VALUES (%s, %s, %s)",
        args=[(i, f"row {i} label {i * 7919 % 10007}", i * 1.25) for i in range(1, BIG_ROWS + 1)],
    )
    sql(target, "INSERT INTO hidden (id, v, extra) VALUES (1, 10, 3), (2, 20, 4)")
    sql(target, f"INSERT INTO `{ODD_TABLE}` VALUES (1, 1.5), (2, -2e10)")
    sql(
        target,
        "CREATE VIEW client_names AS SELECT id, name FROM clients",
        "CREATE VIEW big_total AS SELECT COUNT(*) AS n, SUM(amount) AS s FROM big",
        "CREATE TRIGGER clients_audit AFTER INSERT ON clients FOR EACH ROW\nBEGIN\n"
        "INSERT INTO `audit` VALUES (NEW.id, 'insert');\nEND",
        "CREATE PROCEDURE count_clients(OUT n INT)\nBEGIN\n-- a comment line\n"
        "SELECT COUNT(*) INTO n FROM clients;\nEND",
        "CREATE EVENT nightly ON SCHEDULE EVERY 1 DAY STARTS '2030-01-01 00:00:00' "
        "DO DELETE FROM audit",
    )


def snapshot(target: DbTarget) -> dict[str, object]:
    """Every row of every base table, plus the names of views, triggers, routines, events."""
    with connect(target) as conn, conn.cursor() as cur:
        cur.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = %s "
            "AND table_type = 'BASE TABLE' ORDER BY table_name",
            (target.database,),
        )
        tables = [str(row[0]) for row in cur.fetchall()]
        state: dict[str, object] = {}
        for table in tables:
            invisible = ", extra" if table == "hidden" else ""
            cur.execute(f"SELECT *{invisible} FROM `{table}`")
            state[table] = sorted(cur.fetchall(), key=repr)
        for kind, query in {
            "views": "SELECT table_name FROM information_schema.views WHERE table_schema = %s",
            "triggers": "SELECT trigger_name FROM information_schema.triggers "
            "WHERE trigger_schema = %s",
            "routines": "SELECT routine_name FROM information_schema.routines "
            "WHERE routine_schema = %s",
            "events": "SELECT event_name FROM information_schema.events WHERE event_schema = %s",
        }.items():
            cur.execute(query, (target.database,))
            state[kind] = sorted(str(row[0]) for row in cur.fetchall())
        cur.execute("SELECT n, s FROM big_total")
        state["big_total"] = cur.fetchall()
    return state


def load(target: DbTarget, folder: Path, files: list[str]) -> None:
    """Pipe the files, in order, through the mariadb client into ``target``."""
    data = b"".join((folder / name).read_bytes() for name in files)
    with client_options(target) as (option, fd):
        execute.run(["mariadb", option, target.database], input=data, pass_fds=[fd])


def restore_order(result: DumpResult) -> list[str]:
    return [
        result.header_file,
        *sorted(table.file for table in result.tables),
        result.routines_file,
        result.footer_file,
    ]


def digests(result: DumpResult) -> list[tuple[str, str, int, int]]:
    return [(t.name, t.sha256, t.rows, t.bytes) for t in result.tables]


def raw_dump(target: DbTarget) -> bytes:
    with client_options(target) as (option, fd):
        return execute.run(dump_command(option, target.database), pass_fds=[fd]).stdout


@pytest.fixture
def scratch(database: DbTarget) -> Iterator[DbTarget]:
    """A second empty database on the same server, dropped afterwards."""
    target = database.with_database(f"{database.database}_copy")
    sql(database, f"CREATE DATABASE `{target.database}`")
    yield target
    sql(database, f"DROP DATABASE IF EXISTS `{target.database}`")


@pytest.fixture
def populated(database: DbTarget) -> DbTarget:
    populate(database)
    return database


def test_dump_command_is_one_database_without_create_database() -> None:
    argv = dump_command("--defaults-extra-file=/dev/fd/7", "itflow")
    assert argv[:2] == ["mariadb-dump", "--defaults-extra-file=/dev/fd/7"]
    assert argv[-2:] == ["--", "itflow"]
    assert "--databases" not in argv
    assert set(DUMP_OPTIONS) <= set(argv)


def test_table_file_names_are_safe_and_distinct() -> None:
    assert table_file_name(b"clients_2$-x") == "tables/clients_2$-x.sql"
    assert table_file_name("a b/ñ".encode()) == "tables/a%20b%2F%C3%B1.sql"
    assert table_file_name(b"..") == "tables/%2E%2E.sql"
    long_names = [("日本" * 32).encode(), ("日本" * 31 + "語").encode()]
    files = [table_file_name(name) for name in long_names]
    assert len(set(files)) == 2
    assert all(len(Path(file).name) < 255 for file in files)


def test_split_restores_everything_and_digests_are_stable(
    populated: DbTarget, scratch: DbTarget, tmp_path: Path
) -> None:
    seen: list[int] = []
    result = dump_database(populated, tmp_path / "one", on_bytes=seen.append)
    folder = tmp_path / "one"

    names = [table.name for table in result.tables]
    assert names == sorted(names)
    assert set(names) == {"audit", "big", "clients", "empty_one", "files", "hidden", ODD_TABLE}
    by_name = {table.name: table for table in result.tables}
    assert by_name[ODD_TABLE].file == "tables/facturaci%C3%B3n%202024.sql"
    assert {n: t.rows for n, t in by_name.items()} == {
        "audit": 0,
        "big": BIG_ROWS,
        "clients": 4,
        "empty_one": 0,
        "files": 3,
        "hidden": 2,
        ODD_TABLE: 2,
    }
    assert result.total_bytes == sum(p.stat().st_size for p in folder.rglob("*.sql"))
    assert seen == sorted(seen) and seen[-1] >= result.total_bytes
    for table in result.tables:
        assert digest_file(folder / table.file) == (table.sha256, table.rows, table.bytes)
    clients = (folder / by_name["clients"].file).read_text()
    assert "TRIGGER" in clients and "-- Dumping data for table `clients`" in clients
    routines = (folder / result.routines_file).read_text()
    assert "count_clients" in routines and "nightly" in routines and "client_names" in routines
    assert "FOREIGN_KEY_CHECKS=0" in (folder / result.header_file).read_text()
    assert (folder / result.footer_file).read_text().endswith("-- Dump completed\n")

    again = dump_database(populated, tmp_path / "two")
    assert digests(again) == digests(result)

    load(scratch, folder, restore_order(result))
    assert snapshot(scratch) == snapshot(populated)
    assert digests(dump_database(scratch, tmp_path / "three")) == digests(result)


def test_each_table_loads_alone(populated: DbTarget, tmp_path: Path) -> None:
    result = dump_database(populated, tmp_path / "dump")
    for index, table in enumerate(result.tables):
        alone = populated.with_database(f"{populated.database}_alone{index}")
        sql(populated, f"CREATE DATABASE `{alone.database}`")
        try:
            load(alone, tmp_path / "dump", [result.header_file, table.file, result.footer_file])
            with connect(alone) as conn, conn.cursor() as cur:
                cur.execute("SHOW TABLES")
                assert [row[0] for row in cur.fetchall()] == [table.name]
                cur.execute(f"SELECT COUNT(*) FROM `{table.name}`")
                assert cur.fetchone() == (table.rows,)
        finally:
            sql(populated, f"DROP DATABASE `{alone.database}`")


def statements(path: Path) -> list[bytes]:
    return path.read_bytes().split(b";\n")


def test_changed_row_changes_only_its_statement(populated: DbTarget, tmp_path: Path) -> None:
    before = dump_database(populated, tmp_path / "before")
    sql(populated, "UPDATE big SET label = 'changed in the middle' WHERE id = 10000")
    after = dump_database(populated, tmp_path / "after")
    old = statements(tmp_path / "before" / "tables/big.sql")
    new = statements(tmp_path / "after" / "tables/big.sql")

    assert len(old) == len(new) > BIG_ROWS // 400  # about one statement per 128 rows
    changed = [i for i, (a, b) in enumerate(zip(old, new, strict=True)) if a != b]
    assert len(changed) == 1
    assert b"changed in the middle" in new[changed[0]]
    assert 10 < changed[0] < len(old) - 10
    for statement in new[1:-1]:
        assert statement.count(b"\nINSERT INTO") <= 1  # rows stay one per line, one head
    digest_before = {t.name: t.sha256 for t in before.tables}
    digest_after = {t.name: t.sha256 for t in after.tables}
    assert [n for n in digest_before if digest_before[n] != digest_after[n]] == ["big"]


def test_split_stream_on_cut_streams(populated: DbTarget, tmp_path: Path) -> None:
    raw = raw_dump(populated)
    whole = split_stream(io.BytesIO(raw), tmp_path / "whole")
    assert whole.tables[1].rows == BIG_ROWS
    last_line = raw.rstrip(b"\n").rfind(b"\n") + 1
    for index, cut in enumerate((len(raw) // 2, last_line, len(raw) - 1, 0)):
        with pytest.raises(DumpIncompleteError, match="ended early"):
            split_stream(io.BytesIO(raw[:cut]), tmp_path / f"cut{index}")


def test_dump_failing_halfway_reports_stderr(database: DbTarget, tmp_path: Path) -> None:
    sql(
        database,
        "CREATE TABLE a_first (id INT PRIMARY KEY)",
        "INSERT INTO a_first VALUES (1)",
        "CREATE TABLE gone (id INT)",
        "CREATE VIEW m_view AS SELECT id FROM gone",
        "DROP TABLE gone",
    )
    with pytest.raises(ToolError) as caught:
        dump_database(database, tmp_path / "dump")
    assert caught.value.code > 0
    assert "m_view" in str(caught.value)
    assert (tmp_path / "dump/tables/a_first.sql").exists()


def test_unknown_database(database: DbTarget, tmp_path: Path) -> None:
    with pytest.raises(ToolError, match=r"Unknown database.*check the database name"):
        dump_database(database.with_database("no_such_db"), tmp_path / "dump")


def test_wrong_password_is_not_shown(database: DbTarget, tmp_path: Path) -> None:
    wrong = DbTarget(database.database, socket=database.socket, password=Secret("Wr0ng-s3cret"))
    with pytest.raises(ToolError) as caught:
        dump_database(wrong, tmp_path / "dump")
    assert "Access denied" in str(caught.value)
    assert "password" in caught.value.hint
    assert "Wr0ng-s3cret" not in str(caught.value)


def _children() -> list[str]:
    """Names of our own child processes."""
    names = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)
        except OSError:
            continue
        if int(fields[1].split()[1]) == os.getpid():
            names.append(fields[0].split("(", 1)[1])
    return names


def test_interrupt_kills_mariadb_dump(populated: DbTarget, tmp_path: Path) -> None:
    def interrupt(done: int) -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        dump_database(populated, tmp_path / "dump", on_bytes=interrupt)
    assert "mariadb-dump" not in _children()


def test_disk_full_says_so(populated: DbTarget, tiny_disk: Path) -> None:
    with pytest.raises(FlowsafeError, match="no space left on device") as caught:
        dump_database(populated, tiny_disk / "dump")
    assert str(tiny_disk / "dump") in str(caught.value)
    assert "mariadb-dump" not in _children()
