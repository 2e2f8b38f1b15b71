"""Loading a split dump into a real private MariaDB: round trips, digests, failures."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from flowsafe.errors import ToolError, VerificationError
from flowsafe.mariadb.connection import DbTarget, connect
from flowsafe.mariadb.dump import DumpResult, digest_file, dump_database
from flowsafe.mariadb.instance import PrivateServer
from flowsafe.mariadb.load import (
    PROGRESS_STEP,
    LineDigest,
    TableLoad,
    load_routines,
    load_tables,
)
from tests.test_dump import _children, sql

TABLES = ("clients", "invoices", "files", "notes", "empty_one")


def populate(target: DbTarget) -> None:
    """Tables with foreign keys, unicode, binary, NULLs and long text; a view, a procedure."""
    sql(
        target,
        "CREATE TABLE clients (id INT PRIMARY KEY, name VARCHAR(200), born DATE)",
        "CREATE TABLE invoices (id INT PRIMARY KEY AUTO_INCREMENT, client_id INT NOT NULL, "
        "amount DECIMAL(12,2), note VARCHAR(300), KEY (amount), "
        "CONSTRAINT fk_client FOREIGN KEY (client_id) REFERENCES clients (id) ON DELETE CASCADE)",
        "CREATE TABLE files (id INT PRIMARY KEY, client_id INT, data BLOB, body LONGTEXT, "
        "CONSTRAINT fk_file FOREIGN KEY (client_id) REFERENCES clients (id))",
        "CREATE TABLE notes (id INT PRIMARY KEY, body TEXT)",
        "CREATE TABLE empty_one (id INT PRIMARY KEY)",
        "INSERT INTO clients SELECT seq, CONCAT('Zoë 😀 日本 ', seq), "
        "'2000-01-01' + INTERVAL seq DAY FROM seq_1_to_300",
        "INSERT INTO clients VALUES (301, NULL, NULL), (302, 'O''Brien \"q\" \\\\ \\n\\t', NULL)",
        "INSERT INTO invoices (client_id, amount, note) SELECT 1 + seq % 302, seq * 1.25, "
        "IF(seq % 5, REPEAT(MD5(seq), 1 + seq % 9), NULL) FROM seq_1_to_20000",
        # ~6 MB: progress is reported more than once
        "INSERT INTO notes SELECT seq, REPEAT(SHA2(seq, 256), 50) FROM seq_1_to_2000",
        "CREATE VIEW big_invoices AS SELECT id, amount FROM invoices WHERE amount > 20000",
        "CREATE PROCEDURE count_invoices(OUT n INT)\nBEGIN\n-- counted\n"
        "SELECT COUNT(*) INTO n FROM invoices;\nEND",
    )
    sql(
        target,
        "INSERT INTO files VALUES (%s, %s, %s, %s)",
        args=[
            (1, 1, bytes(range(256)) * 4, "x" * 300_000 + "\n" + "ü" * 1000),
            (2, 2, b"\x00\n\r\x1a'\"\\", None),
            (3, None, None, ""),
        ],
    )


def checksums(target: DbTarget) -> dict[str, object]:
    """CHECKSUM TABLE of every base table, plus the view's rows and the procedure's result."""
    with connect(target) as conn, conn.cursor() as cur:
        cur.execute("CHECKSUM TABLE " + ", ".join(TABLES))
        state: dict[str, object] = {str(row[0]).split(".")[1]: row[1] for row in cur.fetchall()}
        cur.execute("SELECT * FROM clients ORDER BY id")
        state["clients rows"] = cur.fetchall()
        return state


def loads(result: DumpResult, folder: Path) -> list[TableLoad]:
    return [TableLoad(t.name, folder / t.file, t.sha256, t.rows, t.bytes) for t in result.tables]


def table_names(target: DbTarget) -> list[str]:
    with connect(target) as conn, conn.cursor() as cur:
        cur.execute("SHOW FULL TABLES")
        return sorted(str(row[0]) for row in cur.fetchall())


Dumped = tuple[DbTarget, DumpResult, Path]


@pytest.fixture(scope="module")
def dumped(
    mariadb_server: PrivateServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Dumped]:
    """The source database (populated once for the module) and its dump folder."""
    source = mariadb_server.target("load_source")
    sql(source.with_database(""), f"CREATE DATABASE `{source.database}`")
    populate(source)
    folder = tmp_path_factory.mktemp("dump")
    yield source, dump_database(source, folder), folder
    sql(source, f"DROP DATABASE `{source.database}`")


@pytest.mark.parametrize("jobs", [1, 3])
def test_round_trip(dumped: Dumped, database: DbTarget,
                    jobs: int) -> None:
    source, result, folder = dumped
    seen: list[int] = []
    done = load_tables(database, folder / result.header_file, folder / result.footer_file,
                       loads(result, folder), jobs=jobs, on_bytes=seen.append)

    total = sum(table.bytes for table in result.tables)
    assert (done.tables, done.bytes) == (len(TABLES), total)
    assert seen == sorted(seen) and seen[-1] == total and len(seen) >= 2
    assert all(b - a >= PROGRESS_STEP for a, b in zip([0, *seen], seen[:-1], strict=False))
    assert table_names(database) == sorted(TABLES)

    load_routines(database, folder / result.header_file, folder / result.routines_file,
                  folder / result.footer_file)
    assert checksums(database) == checksums(source)
    with connect(database) as conn, conn.cursor() as cur:
        cur.execute("SELECT COUNT(*) FROM big_invoices")
        assert cur.fetchone() == (4000,)
        cur.execute("CALL count_invoices(@n)")
        cur.execute("SELECT @n")
        assert cur.fetchone() == (20000,)
        cur.execute("SHOW CREATE TABLE invoices")
        assert "CONSTRAINT `fk_client` FOREIGN KEY" in cur.fetchone()[1]


@pytest.mark.parametrize(
    "where",
    [
        b",6250.00,",  # a digit of an amount: the SQL still runs
        b"\n(5000,",  # a digit of an id: a duplicate key stops the client first
    ],
)
def test_tampered_table_file(dumped: Dumped, database: DbTarget, tmp_path: Path,
                             where: bytes) -> None:
    _, result, folder = dumped
    tables = loads(result, folder)
    invoices = next(table for table in tables if table.name == "invoices")
    data = bytearray(invoices.path.read_bytes())
    data[data.index(where) + 3] ^= 1
    damaged = tmp_path / "invoices.sql"
    damaged.write_bytes(data)
    tables[tables.index(invoices)] = TableLoad("invoices", damaged, invoices.sha256,
                                               invoices.rows, invoices.bytes)

    with pytest.raises(VerificationError, match=r"table 'invoices': dump file digest differs"):
        load_tables(database, folder / result.header_file, folder / result.footer_file, tables,
                    jobs=2)
    assert "mariadb" not in _children()


def test_missing_table_file_loads_nothing(dumped: Dumped,
                                          database: DbTarget) -> None:
    _, result, folder = dumped
    tables = loads(result, folder)
    tables.append(TableLoad("gone", folder / "tables/gone.sql", "0" * 64, 0, 0))

    with pytest.raises(VerificationError, match=r"table 'gone': its dump file is missing"):
        load_tables(database, folder / result.header_file, folder / result.footer_file, tables,
                    jobs=2)
    assert table_names(database) == []


def test_sql_error_names_table_and_kills_the_others(
    dumped: Dumped, database: DbTarget, tmp_path: Path
) -> None:
    _, result, folder = dumped
    broken = tmp_path / "broken.sql"  # the biggest file: it starts first and fails at once
    filler = (b"-- " + b"-" * 1000 + b"\n") * 10_000
    broken.write_bytes(b"INSERT INTO nowhere VALUES (1);\n" + filler)
    sha256, rows, size = digest_file(broken)
    tables = [*loads(result, folder), TableLoad("broken", broken, sha256, rows, size)]

    with pytest.raises(ToolError, match=r"nowhere' doesn't exist \(loading table 'broken'\)"
                       ) as failure:
        load_tables(database, folder / result.header_file, folder / result.footer_file, tables,
                    jobs=2)
    assert "VALUES (1)" not in str(failure.value)  # rows may hold secrets: never echoed
    assert "mariadb" not in _children()


def test_interrupt_kills_every_client(dumped: Dumped,
                                      database: DbTarget) -> None:
    _, result, folder = dumped

    def interrupt(done: int) -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        load_tables(database, folder / result.header_file, folder / result.footer_file,
                    loads(result, folder), jobs=3, on_bytes=interrupt)
    assert "mariadb" not in _children()


def digest_in_pieces(data: bytes, size: int) -> str:
    digest = LineDigest()
    for start in range(0, len(data), size):
        digest.update(data[start:start + size])
    return digest.hexdigest()


@pytest.mark.parametrize(
    "text",
    [
        b"",
        b"a\n",
        b"-- only a comment\n",
        b"--\n-- Table\n--\n\nDROP TABLE x;\n-\n-a\n--b\n(1,'--'),\n(2);\n",
        b"-- comment without newline",
        b"no newline at the end",
        b"ends with a dash\n-",
        b"\n\n--x\n-\n--\n",
    ],
)
def test_line_digest_matches_digest_file(text: bytes, tmp_path: Path) -> None:
    path = tmp_path / "t.sql"
    path.write_bytes(text)
    expected = digest_file(path)[0]
    for size in (1, 2, 3, 5, 1 << 20):
        assert digest_in_pieces(text, size) == expected, size


def test_line_digest_matches_on_dump_files(dumped: Dumped) -> None:
    _, result, folder = dumped
    for table in result.tables:
        data = (folder / table.file).read_bytes()
        for size in (4096, 100_003):
            assert digest_in_pieces(data, size) == table.sha256, (table.name, size)
