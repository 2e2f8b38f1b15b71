"""Loading a split dump into a real private MariaDB: round trips through the fast path
(chunks over many sessions, indexes after rows), digests checked before anything runs,
hostile statements refused, the load account's limits, failures."""

from __future__ import annotations

import hashlib
import shutil
from collections.abc import Iterator
from pathlib import Path

import pymysql
import pytest

from flowsafe.errors import FlowsafeError, ToolError, VerificationError
from flowsafe.manifest import ChunkEntry, DumpFileEntry
from flowsafe.mariadb import accounts
from flowsafe.mariadb.connection import DbTarget, connect
from flowsafe.mariadb.dump import DumpResult, dump_database
from flowsafe.mariadb.instance import PrivateServer
from flowsafe.mariadb.load import FolderSource, LoadOptions, load_dump
from flowsafe.mariadb.statements import UnsafeStatementError
from flowsafe.secret import Secret
from tests.dumps import content, entries_of, restore_folder, sql

ODD = "naïve 表 `quoted`"


def populate(target: DbTarget) -> None:
    """Foreign keys (one to itself), no primary key, unicode names, BLOBs with NUL bytes,
    invisible columns, long text, a view and a procedure."""
    sql(
        target,
        "CREATE TABLE clients (id INT PRIMARY KEY, name VARCHAR(200), born DATE, "
        "parent_id INT, KEY (name), CONSTRAINT fk_parent FOREIGN KEY (parent_id) "
        "REFERENCES clients (id) ON DELETE CASCADE)",
        "CREATE TABLE invoices (id INT PRIMARY KEY AUTO_INCREMENT, client_id INT NOT NULL, "
        "amount DECIMAL(12,2), note VARCHAR(300), KEY (amount), UNIQUE KEY (note, id), "
        "CONSTRAINT fk_client FOREIGN KEY (client_id) REFERENCES clients (id) ON DELETE CASCADE)",
        "CREATE TABLE files (id INT PRIMARY KEY, client_id INT, data BLOB, body LONGTEXT, "
        "secret INT INVISIBLE DEFAULT 7, CONSTRAINT fk_file FOREIGN KEY (client_id) "
        "REFERENCES clients (id))",
        "CREATE TABLE audit (at DATETIME, what VARCHAR(40), KEY (at))",
        f"CREATE TABLE `{ODD.replace('`', '``')}` (id INT PRIMARY KEY, v VARBINARY(16))",
        "CREATE TABLE empty_one (id INT PRIMARY KEY)",
        "INSERT INTO clients SELECT seq, CONCAT('Zoë 😀 日本 ', seq), "
        "'2000-01-01' + INTERVAL seq DAY, IF(seq > 8, 1 + seq % 7, NULL) FROM seq_1_to_300",
        "INSERT INTO invoices (client_id, amount, note) SELECT 1 + seq % 300, seq * 1.25, "
        "IF(seq % 5, REPEAT(MD5(seq), 1 + seq % 9), NULL) FROM seq_1_to_30000",
        "INSERT INTO audit SELECT '2020-01-01' + INTERVAL seq MINUTE, REPEAT('x', seq % 40) "
        "FROM seq_1_to_5000",
        f"INSERT INTO `{ODD.replace('`', '``')}` VALUES (1, X'00ff000a0d27225c'), (2, NULL)",
        "CREATE VIEW big_invoices AS SELECT id, amount FROM invoices WHERE amount > 20000",
        "CREATE PROCEDURE count_invoices(OUT n INT)\nBEGIN\n-- counted\n"
        "SELECT COUNT(*) INTO n FROM invoices;\nEND",
    )
    sql(target, "INSERT INTO files (id, client_id, data, body, secret) VALUES (%s, %s, %s, %s, 9)",
        args=[(1, 1, bytes(range(256)) * 4, "x" * 300_000 + "\n" + "ü" * 1000),
              (2, 2, b"\x00\n\r\x1a'\"\\", None), (3, None, None, "")])


Dumped = tuple[DbTarget, DumpResult, Path]


@pytest.fixture(scope="module")
def dumped(mariadb_server: PrivateServer, tmp_path_factory: pytest.TempPathFactory
           ) -> Iterator[Dumped]:
    """The source database (populated once for the module) and its dump folder."""
    source = mariadb_server.target("load_source")
    sql(source.with_database(""), f"CREATE DATABASE `{source.database}`")
    populate(source)
    folder = tmp_path_factory.mktemp("dump")
    yield source, dump_database(source, folder), folder
    sql(source, f"DROP DATABASE `{source.database}`")


@pytest.fixture
def target_name(mariadb_server: PrivateServer) -> Iterator[str]:
    name = "load_target"
    yield name
    sql(mariadb_server.target(), f"DROP DATABASE IF EXISTS `{name}`")


@pytest.mark.parametrize(("jobs", "defer_from"), [(1, 1 << 40), (3, 0)])
def test_round_trip(dumped: Dumped, mariadb_server: PrivateServer, target_name: str,
                    jobs: int, defer_from: int) -> None:
    source, result, folder = dumped
    loaded = restore_folder(mariadb_server.target(), target_name, result, folder, jobs=jobs,
                            defer_from=defer_from)
    target = source.with_database(target_name)
    assert loaded.tables == len(result.tables)
    assert loaded.rows == sum(t.rows for t in result.tables)
    assert content(target) == content(source)
    with connect(target) as conn, conn.cursor() as cur:
        cur.execute("SELECT COUNT(*) FROM big_invoices")
        assert cur.fetchone() == (14000,)
        cur.execute("CALL count_invoices(@n)")
        cur.execute("SELECT @n")
        assert cur.fetchone() == (30000,)
        for table, needle in (("invoices", "CONSTRAINT `fk_client` FOREIGN KEY"),
                              ("clients", "CONSTRAINT `fk_parent` FOREIGN KEY"),
                              ("invoices", "UNIQUE KEY `note`")):
            cur.execute(f"SHOW CREATE TABLE {table}")
            assert needle in cur.fetchone()[1]
        cur.execute("SELECT secret FROM files ORDER BY id")
        assert cur.fetchall() == ((9,), (9,), (9,))


def with_data(entry: DumpFileEntry, data: bytes, parts: list[tuple[str, bytes]]
              ) -> DumpFileEntry:
    """``entry`` made to describe ``data`` (given as parts): digests that match."""
    chunks, offset = [], 0
    for part, piece in parts:
        chunks.append(ChunkEntry(part=part, offset=offset, bytes=len(piece),
                                 rows=piece.count(b"\n(") + piece.count(b"INSERT"),
                                 sha256=hashlib.sha256(piece).hexdigest()))
        offset += len(piece)
    assert offset == len(data)
    return entry.model_copy(update={"chunks": chunks, "bytes": len(data),
                                    "rows": sum(c.rows for c in chunks if c.part == "rows")})


def copy_dump(folder: Path, tmp_path: Path) -> Path:
    copied = tmp_path / "copy"
    shutil.copytree(folder, copied)
    return copied


def load(mariadb_server: PrivateServer, name: str, entries: list[DumpFileEntry],
         folder: Path, jobs: int = 2) -> None:
    admin = mariadb_server.target()
    sql(admin, f"CREATE DATABASE `{name}`")
    with accounts.load_account(admin, name) as loader:
        load_dump(loader, entries, FolderSource(folder, entries), LoadOptions(jobs=jobs))


@pytest.mark.parametrize("part", ["rows", "ddl"])
def test_a_damaged_chunk_loads_nothing_of_it(dumped: Dumped, mariadb_server: PrivateServer,
                                             target_name: str, tmp_path: Path,
                                             part: str) -> None:
    _, result, folder = dumped
    copied = copy_dump(folder, tmp_path)
    entries = entries_of(result)
    invoices = next(e for e in entries if e.name == "invoices")
    chunk = next(c for c in invoices.chunks if c.part == part)
    path = copied / invoices.file
    data = bytearray(path.read_bytes())
    data[chunk.offset + chunk.bytes // 2] ^= 1
    path.write_bytes(data)
    with pytest.raises(VerificationError, match=r"'invoices': chunk \d+ of its dump file "
                                                r"differs from the manifest"):
        load(mariadb_server, target_name, entries, copied)
    with connect(mariadb_server.target(target_name)) as conn, conn.cursor() as cur:
        cur.execute("SELECT TABLE_ROWS FROM information_schema.TABLES WHERE TABLE_NAME = "
                    "'invoices' AND TABLE_SCHEMA = %s", (target_name,))
        found = cur.fetchall()
    if part == "ddl":
        assert found == ()  # not even created
    else:
        cur_rows = found[0][0] if found else 0
        assert cur_rows < invoices.rows  # the damaged chunk never ran


def test_a_missing_file(dumped: Dumped, mariadb_server: PrivateServer, target_name: str,
                        tmp_path: Path) -> None:
    _, result, folder = dumped
    copied = copy_dump(folder, tmp_path)
    entries = entries_of(result)
    (copied / next(e for e in entries if e.name == "audit").file).unlink()
    with pytest.raises(VerificationError, match=r"'tables/audit.sql' is missing from the "
                                                "snapshot"):
        load(mariadb_server, target_name, entries, copied)


@pytest.mark.parametrize(("evil", "part"), [
    (b"DROP DATABASE other_db;\n", "ddl"),
    (b"GRANT ALL ON *.* TO evil;\n", "ddl"),
    (b"USE other_db;\n", "ddl"),
    (b"\\! touch /tmp/flowsafe-pwned\n", "ddl"),
    (b"INSERT INTO `other_db`.`keep` VALUES (1);\n", "rows"),
    (b"INSERT INTO `empty_one` VALUES (1); DROP DATABASE other_db;\n", "rows"),
])
def test_a_hostile_dump_with_matching_digests_runs_nothing(
    dumped: Dumped, mariadb_server: PrivateServer, target_name: str, tmp_path: Path,
    evil: bytes, part: str
) -> None:
    """What a repository writer could plant if the signature did not stop it: still nothing
    outside the target database runs."""
    root = mariadb_server.target()
    sql(root, "CREATE DATABASE IF NOT EXISTS other_db", "CREATE TABLE IF NOT EXISTS "
        "other_db.keep (id INT)")
    _, result, folder = dumped
    copied = copy_dump(folder, tmp_path)
    entries = entries_of(result)
    index = next(i for i, e in enumerate(entries) if e.name == "empty_one")
    path = copied / entries[index].file
    ddl = path.read_bytes()
    data = ddl + evil
    path.write_bytes(data)
    entries[index] = with_data(entries[index], data, [("ddl", ddl), (part, evil)])
    try:
        with pytest.raises((UnsafeStatementError, ToolError)):
            load(mariadb_server, target_name, entries, copied)
        with connect(root) as conn, conn.cursor() as cur:
            cur.execute("SELECT COUNT(*) FROM other_db.keep")
            assert cur.fetchone() == (0,)
            cur.execute("SELECT COUNT(*) FROM mysql.global_priv WHERE User = 'evil'")
            assert cur.fetchone() == (0,)
        assert not Path("/tmp/flowsafe-pwned").exists()
    finally:
        sql(root, "DROP DATABASE other_db")


def test_the_load_account_reaches_only_its_database(mariadb_server: PrivateServer,
                                                     target_name: str) -> None:
    admin = mariadb_server.target()
    sql(admin, f"CREATE DATABASE `{target_name}`")
    with accounts.load_account(admin, target_name) as loader:
        with connect(loader) as conn, conn.cursor() as cur:
            cur.execute("CREATE TABLE mine (id INT)")
            for forbidden in ("CREATE DATABASE elsewhere", "SELECT * FROM mysql.global_priv",
                              "SELECT 1 INTO OUTFILE '/tmp/flowsafe-outfile'",
                              "CREATE USER someone", "SET GLOBAL general_log = 1"):
                with pytest.raises(pymysql.err.MySQLError):
                    cur.execute(forbidden)
        name = loader.user
    with connect(admin) as conn, conn.cursor() as cur:
        cur.execute("SELECT COUNT(*) FROM mysql.global_priv WHERE User = %s", (name,))
        assert cur.fetchone() == (0,)  # dropped after the load


def test_a_failing_statement_names_the_table_not_the_values(
    dumped: Dumped, mariadb_server: PrivateServer, target_name: str, tmp_path: Path
) -> None:
    _, result, folder = dumped
    copied = copy_dump(folder, tmp_path)
    entries = entries_of(result)
    index = next(i for i, e in enumerate(entries) if e.name == "empty_one")
    path = copied / entries[index].file
    ddl = path.read_bytes()
    rows = b"INSERT INTO `empty_one` VALUES ('hunter2-secret', 2, 3);\n"
    path.write_bytes(ddl + rows)
    entries[index] = with_data(entries[index], ddl + rows, [("ddl", ddl), ("rows", rows)])
    with pytest.raises(ToolError, match=r"loading table 'empty_one'") as failure:
        load(mariadb_server, target_name, entries, copied, jobs=3)
    assert "hunter2" not in str(failure.value)


def test_an_interrupt_stops_the_load_and_drops_its_account(
    dumped: Dumped, mariadb_server: PrivateServer, target_name: str
) -> None:
    _, result, folder = dumped
    admin = mariadb_server.target()
    entries = entries_of(result)

    def interrupt(done: int) -> None:
        raise KeyboardInterrupt

    sql(admin, f"CREATE DATABASE `{target_name}`")
    with pytest.raises(KeyboardInterrupt), accounts.load_account(admin, target_name) as loader:
        load_dump(loader, entries, FolderSource(folder, entries),
                  LoadOptions(jobs=3, on_bytes=interrupt))
    with connect(admin) as conn, conn.cursor() as cur:
        cur.execute("SELECT COUNT(*) FROM mysql.global_priv WHERE User LIKE 'flowsafe_load_%'")
        assert cur.fetchone() == (0,)


def test_stale_load_accounts_of_dead_runs_are_dropped(mariadb_server: PrivateServer) -> None:
    admin = mariadb_server.target()
    sql(admin, "CREATE USER flowsafe_load_999999_abcd@localhost",
        "CREATE USER flowsafe_load_1_abcd@localhost")  # pid 1 is alive: kept
    try:
        assert accounts.drop_stale(admin) == ["flowsafe_load_999999_abcd"]
    finally:
        sql(admin, "DROP USER IF EXISTS flowsafe_load_1_abcd@localhost")


def test_the_admin_of_a_stock_vm_is_root_over_the_socket(mariadb_server: PrivateServer
                                                          ) -> None:
    """ITFlow's own account may not create databases: root over the local socket may (as on
    a Debian VM), and a configured account without the rights is told what to do."""
    admin = mariadb_server.target()
    sql(admin, "CREATE USER IF NOT EXISTS plain@localhost IDENTIFIED BY 'pw'")
    plain = DbTarget(database="", socket=admin.socket, user="plain", password=Secret("pw"))
    assert accounts.choose_admin(plain, None).user == "root"
    with pytest.raises(FlowsafeError, match=r"may not create databases and accounts.*"
                                            r"\[sites.<name>.admin\]"):
        accounts.choose_admin(plain, plain)
