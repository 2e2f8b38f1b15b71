"""Property tests (Hypothesis) for every reader of hostile input: config.php, the SQL
statement splitter and the dump splitter, the manifest, the TOML config, ITFlow archives.

Whatever the input, a reader returns or raises a clean ``FlowsafeError``, never anything
else; where a round trip exists it holds. The default run tries a few hundred cases each;
``HYPOTHESIS_PROFILE=fuzz`` (``make fuzz``) 100,000 each.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from flowsafe.archive.forms import sql_form, zip_form
from flowsafe.archive.reader import open_zip
from flowsafe.config import parse_config
from flowsafe.errors import FlowsafeError
from flowsafe.itflow.config_php import plain_assignments, rewrite_db_settings, single_quote
from flowsafe.manifest import Manifest
from flowsafe.mariadb.dump import split_stream
from flowsafe.mariadb.statements import Splitter, split_text

pytestmark = pytest.mark.fuzz

settings.register_profile("ci", max_examples=300, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("fuzz", max_examples=100_000, deadline=None,
                          suppress_health_check=list(HealthCheck))
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

SCRATCH = Path(tempfile.mkdtemp(prefix="flowsafe-fuzz-"))  # one file per reader, rewritten


def _file(name: str, data: bytes) -> Path:
    path = SCRATCH / name
    path.write_bytes(data)
    return path


def _clean(read: object, *args: object) -> None:
    """``read(*args)`` returns, or raises a FlowsafeError."""
    with contextlib.suppress(FlowsafeError):
        read(*args)  # type: ignore[operator]


# --- config.php ---------------------------------------------------------------------------

PHP_BITS = st.sampled_from([
    "<?php", "?>", "$dbhost", "$dbpassword", "$database", "$dbusername", " = ", ";", "'", '"',
    "\\", "//", "#", "/*", "*/", "\n", "define(", ")", "{", "}", "TRUE", "NULL", "42", "$",
    "<<<EOT", "EOT;", "é", "\ufeff", "\x00", "${x}", "{$x}"])


@given(st.lists(PHP_BITS | st.text(max_size=8), max_size=40).map("".join))
@example("<?php\n$dbhost = 'a\\'b';\n")
def test_config_php_reader_never_crashes(text: str) -> None:
    _clean(plain_assignments, text, "config.php")


@given(host=st.text(), user=st.text(), password=st.text(), database=st.text())
@example(host="", user="", password="", database="=")  # once read as the '==' operator
def test_config_php_values_round_trip(host: str, user: str, password: str,
                                      database: str) -> None:
    text = (f"<?php\n$dbhost = {single_quote(host)};\n$dbusername = {single_quote(user)};\n"
            f"$dbpassword = {single_quote(password)}; // the password\n"
            f"$database = {single_quote(database)};\n")
    values = {a.name: a.value for a in plain_assignments(text)}
    assert values == {"dbhost": host, "dbusername": user, "dbpassword": password,
                      "database": database}
    moved = rewrite_db_settings(text, host="h", user=password, password=host, database="d")
    values = {a.name: a.value for a in plain_assignments(moved)}
    assert values == {"dbhost": "h", "dbusername": password, "dbpassword": host,
                      "database": "d"}


# --- SQL statements and the dump splitter --------------------------------------------------

SQL_BITS = st.sampled_from([
    b"INSERT INTO `t` VALUES ", b"(1,", b"'a;b'", b"'it''s'", b"'back\\\\'", b"'q\\';'",
    b'"dq;"', b"`n;m`", b"`b``t`", b" -- c;\n", b"# h;\n", b"/* c; */", b"/*!40101 SET x=1 */",
    b"/*M!100100 y */", b";", b"\n", b" ", b"0x00ff", b"_binary '\x00\xff\x80;'", b"DELIMITER ;;",
    b"BEGIN", b"END", b")", b"\r\n", b"\\"])


@given(st.lists(SQL_BITS | st.binary(max_size=6), max_size=50).map(b"".join))
def test_statement_splitter_never_crashes(text: bytes) -> None:
    _clean(split_text, text)


def _literal(raw: bytes) -> bytes:
    """A single-quoted SQL string holding ``raw`` (as mariadb-dump escapes it)."""
    escaped = raw.replace(b"\\", b"\\\\").replace(b"'", b"\\'").replace(b"\n", b"\\n")
    return b"'" + escaped.replace(b"\r", b"\\r").replace(b"\x00", b"\\0") + b"'"


STATEMENT = st.lists(
    st.binary(max_size=12).map(_literal) | st.sampled_from(
        [b"INSERT INTO `t` VALUES (1)", b"`a;b`", b"SELECT", b"1", b",", b"(", b")"]),
    min_size=1, max_size=8).map(b" ".join)


@given(st.lists(STATEMENT, min_size=1, max_size=8), st.integers(1, 7))
def test_split_then_join_is_the_original(statements: list[bytes], width: int) -> None:
    """Statements with ``;``, quotes, escapes and binary data inside strings, fed in pieces
    that cut them anywhere: the same statements come out, and joined they are the text."""
    text = b"".join(s + b";\n" for s in statements)
    whole = split_text(text)
    assert [s.raw for s in whole] == statements
    assert b"".join(s.raw + b";\n" for s in whole) == text
    splitter = Splitter()
    pieces = [text[i:i + width] for i in range(0, len(text), width)]
    lines = b"".join(pieces).splitlines(keepends=True)
    fed = [s for line in lines for s in splitter.feed(line)] + splitter.finish()
    assert fed == whole


DUMP_HEAD = (b"/*!40101 SET NAMES utf8mb4 */;\n--\n-- Table structure for table `t`\n--\n\n"
             b"DROP TABLE IF EXISTS `t`;\nCREATE TABLE `t` (id int, v blob);\n"
             b"--\n-- Dumping data for table `t`\n--\n\n")
DUMP_FOOT = b"/*!40103 SET TIME_ZONE=@OLD_TIME_ZONE */;\n-- Dump completed\n"


@given(st.lists(st.binary(max_size=40), max_size=30), st.binary(max_size=200))
def test_dump_splitter_never_crashes(rows: list[bytes], junk: bytes) -> None:
    body = b"".join(b"INSERT INTO `t` VALUES (%d,%s);\n" % (n, _literal(r))
                    for n, r in enumerate(rows))
    for n, stream in enumerate((DUMP_HEAD + body + DUMP_FOOT, DUMP_HEAD + junk + DUMP_FOOT,
                                junk)):
        out = SCRATCH / "dump" / str(n)
        shutil.rmtree(out, ignore_errors=True)
        _clean(split_stream, io.BytesIO(stream), out)


# --- manifest, config ------------------------------------------------------------------------

JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
                    lambda inner: st.lists(inner) | st.dictionaries(st.text(), inner),
                    max_leaves=20)


@given(st.binary() | JSON.map(lambda v: json.dumps(v).encode()) | st.fixed_dictionaries(
    {"format": st.sampled_from([1, 2, 3]), "site": st.text(), "created": st.text()},
    optional={"database": JSON, "files": JSON, "key": JSON}).map(
        lambda v: json.dumps(v).encode()))
def test_manifest_reader_never_crashes(raw: bytes) -> None:
    _clean(Manifest.parse, raw, "snapshot x")


VALID_CONFIG = """state_dir = "/var/lib/flowsafe"

[repositories."default"]
url = "/var/backups/flowsafe"
password_file = "/etc/flowsafe/default.password"

[sites."itflow"]
path = "/var/www/itflow"
repository = "default"

[retention]
keep_last = 3
"""


@given(st.integers(0, len(VALID_CONFIG)), st.integers(0, 8),
       st.text(st.sampled_from([*'[]"=.\n #\'{},x1-', "é", "\x00"]), max_size=10))
def test_config_reader_never_crashes(at: int, cut: int, insert: str) -> None:
    text = VALID_CONFIG[:at] + insert + VALID_CONFIG[at + cut:]
    _clean(parse_config, text, Path("/etc/flowsafe/flowsafe.toml"))


# --- ITFlow archives -------------------------------------------------------------------------

@given(st.binary(max_size=400))
def test_archive_forms_never_crash(data: bytes) -> None:
    for head in (b"", b"PK\x03\x04", b"-- ITFlow database backup\n", b"CREATE TABLE x;\n"):
        path = _file("archive", head + data)
        _clean(sql_form, path)
        with contextlib.suppress(FlowsafeError), open_zip(path) as archive:
            names = archive.namelist()
            zip_form(path, names, [bool(i.flag_bits & 1) for i in archive.infolist()])


@given(st.lists(st.text(max_size=12), max_size=6), st.lists(st.booleans(), max_size=6))
def test_zip_entry_names_never_crash(names: list[str], encrypted: list[bool]) -> None:
    flags = (encrypted + [True] * len(names))[:len(names)]
    _clean(zip_form, Path("x.zip"), names, flags)
