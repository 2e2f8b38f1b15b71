"""The split dump against a real private MariaDB: restore, per-table loads, digests, failures."""

from __future__ import annotations

import io
import os
from pathlib import Path

import pytest

from flowsafe import execute
from flowsafe.errors import ConfigError, FlowsafeError, ToolError
from flowsafe.mariadb.connection import DbTarget, client_options, connect
from flowsafe.mariadb.dump import (
    DUMP_OPTIONS,
    STATEMENT_LIMIT,
    DumpIncompleteError,
    DumpResult,
    dump_command,
    dump_database,
    split_stream,
    table_file_name,
)
from flowsafe.mariadb.instance import PrivateServer
from flowsafe.mariadb.statements import UnsafeStatementError
from flowsafe.mariadb.survey import survey
from flowsafe.secret import Secret
from tests.dumps import content, restore_folder, sql

ODD_TABLE = "facturación 2024"
BIG_ROWS = 20_000


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


def digests(result: DumpResult) -> list[tuple[str, str, int, int]]:
    return [(t.name, t.sha256, t.rows, t.bytes) for t in result.tables]


def raw_dump(target: DbTarget) -> bytes:
    with client_options(target) as (option, fd):
        return execute.run(dump_command(option, target.database), pass_fds=[fd]).stdout


@pytest.fixture
def populated(database: DbTarget) -> DbTarget:
    populate(database)
    return database


def root_of(target: DbTarget) -> DbTarget:
    return target.with_database("")


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
    populated: DbTarget, tmp_path: Path
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
        "audit": 0, "big": BIG_ROWS, "clients": 4, "empty_one": 0, "files": 3, "hidden": 2,
        ODD_TABLE: 2,
    }
    assert result.total_bytes == sum(p.stat().st_size for p in folder.rglob("*.sql"))
    assert seen == sorted(seen) and seen[-1] >= result.total_bytes
    for dumped in result.files:  # chunks tile each file exactly, in order
        data = (folder / dumped.file).read_bytes()
        assert sum(c.bytes for c in dumped.chunks) == len(data) == dumped.bytes
        for chunk in dumped.chunks:
            assert chunk.offset + chunk.bytes <= len(data)
    assert [c.part for c in by_name["clients"].chunks] == ["ddl", "rows", "post"]
    assert len([c for c in by_name["big"].chunks if c.part == "rows"]) >= 1
    assert result.objects() == {"event": ["nightly"], "procedure": ["count_clients"],
                                "trigger": ["clients_audit"],
                                "view": ["big_total", "client_names"]}
    assert (folder / "_footer.sql").read_text().endswith("-- Dump completed\n")

    again = dump_database(populated, tmp_path / "two")
    assert digests(again) == digests(result)

    restored = populated.with_database(f"{populated.database}_copy")
    restore_folder(root_of(populated), restored.database, result, folder, defer_from=1 << 40)
    try:
        assert content(restored) == content(populated)
        assert digests(dump_database(restored, tmp_path / "three")) == digests(result)
    finally:
        sql(root_of(populated), f"DROP DATABASE `{restored.database}`")


def test_changed_row_changes_only_its_statement(populated: DbTarget, tmp_path: Path) -> None:
    before = dump_database(populated, tmp_path / "before")
    sql(populated, "UPDATE big SET label = 'changed in the middle' WHERE id = 10000")
    after = dump_database(populated, tmp_path / "after")
    old = (tmp_path / "before" / "tables/big.sql").read_bytes().split(b";\n")
    new = (tmp_path / "after" / "tables/big.sql").read_bytes().split(b";\n")

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


def test_a_marker_in_a_procedure_body_stays_in_the_procedure(
    database: DbTarget, mariadb_server: PrivateServer, tmp_path: Path
) -> None:
    """The attack: the web app's account hides a fake table section in a procedure body.
    The dump keeps it inside the procedure, and a restore runs nothing of it."""
    root = mariadb_server.target()
    sql(root, "CREATE DATABASE IF NOT EXISTS other_db", "CREATE TABLE IF NOT EXISTS "
        "other_db.keep (id INT)")
    sql(database, "CREATE TABLE t (id INT PRIMARY KEY)", "INSERT INTO t VALUES (1)",
        "CREATE PROCEDURE evil() BEGIN\nSELECT 1;\n--\n-- Table structure for table `x`\n"
        "--\nDROP DATABASE other_db;\nCREATE USER z;\nGRANT ALL ON *.* TO z WITH GRANT OPTION;"
        "\nEND")
    result = dump_database(database, tmp_path / "dump")
    assert [t.name for t in result.tables] == ["t"]
    assert result.objects()["procedure"] == ["evil"]
    assert b"DROP DATABASE other_db" in (tmp_path / "dump/_routines.sql").read_bytes()

    restore_folder(root, "evil_copy", result, tmp_path / "dump")
    try:
        with connect(root) as conn, conn.cursor() as cur:
            cur.execute("SHOW DATABASES LIKE 'other_db'")
            assert cur.fetchall() == (("other_db",),)
            cur.execute("SELECT COUNT(*) FROM mysql.global_priv WHERE User = 'z'")
            assert cur.fetchone() == (0,)
            cur.execute("SELECT DEFINER FROM information_schema.ROUTINES WHERE "
                        "ROUTINE_SCHEMA = 'evil_copy'")
            assert cur.fetchone() == ("root@localhost",)
    finally:
        sql(root, "DROP DATABASE evil_copy", "DROP DATABASE other_db")


def test_a_hostile_stream_is_refused(tmp_path: Path) -> None:
    """A statement no dump holds, where a table's DDL should be, stops the split."""
    raw = (b"/*!40101 SET NAMES utf8mb4 */;\n--\n-- Table structure for table `t`\n--\n\n"
           b"CREATE TABLE `t` (id int);\nGRANT ALL ON *.* TO z;\n"
           b"/*!40103 SET TIME_ZONE=@OLD_TIME_ZONE */;\n-- Dump completed\n")
    with pytest.raises(UnsafeStatementError, match=r"'GRANT ALL ON \*\.\* TO z' is not a "
                                                   r"statement a table's dump holds"):
        split_stream(io.BytesIO(raw), tmp_path / "dump")


def test_statements_stay_within_what_mariadb_dump_writes(
    database: DbTarget, tmp_path: Path
) -> None:
    """A 4 MiB row then a 13 MiB row: never one 17 MiB statement (stock max_allowed_packet
    is 16 MiB); a row alone may be as long as mariadb-dump's own statement for it."""
    sql(database, "CREATE TABLE docs (id INT PRIMARY KEY, body LONGTEXT)")
    sql(database, "INSERT INTO docs VALUES (%s, %s)",
        args=[(1, "a" * (4 << 20)), (2, "b" * (13 << 20)), (3, "c"), (4, "d" * 1000)])
    result = dump_database(database, tmp_path / "dump")
    statements = (tmp_path / "dump/tables/docs.sql").read_bytes().split(b";\n")
    inserts = [s for s in statements if s.lstrip().startswith(b"INSERT")]
    assert len(inserts) >= 2
    for statement in inserts:
        rows = statement.count(b"\n(") + 1
        assert len(statement) <= STATEMENT_LIMIT + 200 or rows == 1
    assert (13 << 20) < result.longest_statement < (13 << 20) + 1000


def test_sequences_versioned_tables_and_odd_names_round_trip(
    database: DbTarget, tmp_path: Path
) -> None:
    sql(database, "CREATE SEQUENCE seq START WITH 100",
        "SELECT NEXTVAL(seq)",
        "CREATE TABLE hist (id INT PRIMARY KEY, v INT) WITH SYSTEM VERSIONING",
        "INSERT INTO hist VALUES (1, 1)", "UPDATE hist SET v = 2",
        "CREATE TABLE `x */; ENABLE KEYS */; --` (id INT PRIMARY KEY)",
        "INSERT INTO `x */; ENABLE KEYS */; --` VALUES (1), (2), (3)",
        "CREATE TABLE `t` (id INT PRIMARY KEY, note TEXT)",
        "CREATE TRIGGER t_note BEFORE INSERT ON t FOR EACH ROW BEGIN\n"
        "SET NEW.note = CONCAT(NEW.note, ';\n--\n-- Table structure for table `y`');\nEND")
    result = dump_database(database, tmp_path / "dump")
    by_name = {t.name: t for t in result.tables}
    assert by_name["seq"].kind == "sequence"
    assert by_name["x */; ENABLE KEYS */; --"].rows == 3
    assert by_name["hist"].rows == 2  # the current row and its history
    assert set(by_name) == {"seq", "hist", "x */; ENABLE KEYS */; --", "t"}
    copy = database.with_database(f"{database.database}_copy")
    for jobs in (1, 3):
        restore_folder(root_of(database), copy.database, result, tmp_path / "dump", jobs=jobs)
        try:
            assert content(copy) == content(database)
        finally:
            sql(root_of(database), f"DROP DATABASE `{copy.database}`")


def test_a_table_name_with_a_line_break_is_refused(database: DbTarget) -> None:
    sql(database, "CREATE TABLE `bad\nname` (id INT)")
    with pytest.raises(ConfigError, match=r"line break in its name.*rename it"):
        survey(database)


def test_lossy_columns_are_named(database: DbTarget) -> None:
    sql(database, "CREATE TABLE m (id INT PRIMARY KEY, f FLOAT, d DOUBLE, "
        "j VARCHAR(10) CHARACTER SET cp932)")
    found = survey(database).lossy["m"]
    assert len(found) == 2
    assert "m.f is FLOAT" in found[0] and "m.j is cp932" in found[1]


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
    sql(database, "CREATE USER IF NOT EXISTS pw_user@localhost IDENTIFIED BY 'right'")
    wrong = DbTarget(database.database, socket=database.socket, user="pw_user",
                     password=Secret("Wr0ng-s3cret"))
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
