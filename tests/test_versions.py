"""App version, git commit and schema versions of an ITFlow folder; version arithmetic."""

from __future__ import annotations

from pathlib import Path

import pymysql
import pytest
from pymysql.constants import ER

from flowsafe.errors import ConfigError
from flowsafe.itflow.site import schema_version_in_use
from flowsafe.itflow.versions import (
    app_version,
    compare_versions,
    expected_schema_version,
    git_commit,
    parse_version,
)
from flowsafe.mariadb.connection import DbTarget, connect

COMMIT_A = "0123456789abcdef0123456789abcdef01234567"
COMMIT_B = "fedcba9876543210fedcba9876543210fedcba98"

COMPUTED_DATABASE_VERSION = """<?php
$database_latest_version = "0.0.0";
foreach (glob(dirname(__DIR__) . "/admin/database_updates/*.php") as $file) {
    $version = basename($file, ".php");
    if (version_compare($version, $database_latest_version, ">")) {
        $database_latest_version = $version;
    }
}
DEFINE("LATEST_DATABASE_VERSION", $database_latest_version);
"""


def _put(site: Path, relative: str, text: str) -> None:
    path = site / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


@pytest.mark.parametrize(
    "text",
    [
        '<?php\n/* header */\nDEFINE("APP_VERSION", "26.08.2");\n',
        "<?php\r\n// define('APP_VERSION', 'old');\r\ndefine('APP_VERSION', '26.08.2');\r\n",
        "\ufeff<?php define ( \"APP_VERSION\" , '26.08.2' ) ;",
    ],
)
def test_app_version(tmp_path: Path, text: str) -> None:
    _put(tmp_path, "includes/app_version.php", text)
    assert app_version(tmp_path) == "26.08.2"


def test_app_version_missing(tmp_path: Path) -> None:
    assert app_version(tmp_path) is None
    _put(tmp_path, "includes/app_version.php", "<?php\n// nothing here\n")
    assert app_version(tmp_path) is None


def test_app_version_garbage_names_the_file(tmp_path: Path) -> None:
    _put(tmp_path, "includes/app_version.php", "<?php\nDEFINE('APP_VERSION', '26.08);\n")
    with pytest.raises(ConfigError, match=r"includes/app_version\.php line 2"):
        app_version(tmp_path)


def test_literal_latest_database_version(tmp_path: Path) -> None:
    _put(
        tmp_path,
        "includes/database_version.php",
        '<?php\nDEFINE("LATEST_DATABASE_VERSION", "1.8.6");\n',
    )
    _put(tmp_path, "admin/database_updates/9.9.9.php", "<?php\n")
    assert expected_schema_version(tmp_path) == "1.8.6"


def test_computed_latest_database_version(tmp_path: Path) -> None:
    _put(tmp_path, "includes/database_version.php", COMPUTED_DATABASE_VERSION)
    for name in ["2.0.0", "2.9.9", "2.10.0", "2.6.7", "README", "2.11"]:
        _put(tmp_path, f"admin/database_updates/{name}.php", "<?php\n")
    _put(tmp_path, "admin/database_updates/3.0.0.php.bak", "")
    assert expected_schema_version(tmp_path) == "2.11"


def test_expected_schema_version_missing(tmp_path: Path) -> None:
    assert expected_schema_version(tmp_path) is None
    _put(tmp_path, "includes/database_version.php", COMPUTED_DATABASE_VERSION)
    assert expected_schema_version(tmp_path) is None


def test_git_loose_ref(tmp_path: Path) -> None:
    _put(tmp_path, ".git/HEAD", "ref: refs/heads/master\n")
    _put(tmp_path, ".git/refs/heads/master", COMMIT_A + "\n")
    _put(tmp_path, ".git/packed-refs", f"{COMMIT_B} refs/heads/master\n")
    assert git_commit(tmp_path) == COMMIT_A


def test_git_packed_refs(tmp_path: Path) -> None:
    _put(tmp_path, ".git/HEAD", "ref: refs/heads/master\n")
    _put(
        tmp_path,
        ".git/packed-refs",
        f"# pack-refs with: peeled fully-peeled sorted\n{COMMIT_B} refs/heads/develop\n"
        f"{COMMIT_A} refs/heads/master\n^{COMMIT_B}\n",
    )
    assert git_commit(tmp_path) == COMMIT_A


def test_git_detached_head(tmp_path: Path) -> None:
    _put(tmp_path, ".git/HEAD", COMMIT_B + "\n")
    assert git_commit(tmp_path) == COMMIT_B


def test_git_file_pointing_elsewhere(tmp_path: Path) -> None:
    _put(tmp_path, "repo.git/HEAD", COMMIT_A + "\n")
    _put(tmp_path, "site/.git", "gitdir: ../repo.git\n")
    assert git_commit(tmp_path / "site") == COMMIT_A


@pytest.mark.parametrize(
    "head",
    [None, "ref: refs/heads/unborn\n", "not a commit\n", "ref: refs/../../outside\n"],
)
def test_git_commit_unknown(tmp_path: Path, head: str | None) -> None:
    if head is not None:
        _put(tmp_path, ".git/HEAD", head)
        _put(tmp_path, "outside", COMMIT_A)
    assert git_commit(tmp_path) is None


@pytest.mark.parametrize(
    ("a", "b", "expected"),
    [
        ("2.10.0", "2.9.9", 1),
        ("2.9.9", "2.10.0", -1),
        ("2.6", "2.6.0", 0),
        ("26.08.2", "26.08", 1),
        ("1.8.6", "2.0.0", -1),
        (" 2.6.7 ", "2.6.7", 0),
    ],
)
def test_compare_versions(a: str, b: str, expected: int) -> None:
    assert compare_versions(a, b) == expected


def test_parse_version() -> None:
    assert parse_version("26.08.2") == (26, 8, 2)
    for garbage in ["", "v2.6", "2..6", "2.6-beta", "Unknown"]:
        with pytest.raises(ConfigError, match="is not a version number"):
            parse_version(garbage)


def test_schema_version_in_use(database: DbTarget) -> None:
    with connect(database) as conn, conn.cursor() as cursor:
        assert schema_version_in_use(conn) is None
        cursor.execute("CREATE TABLE settings (company_id INT)")
        assert schema_version_in_use(conn) is None
        cursor.execute("ALTER TABLE settings ADD config_current_database_version VARCHAR(10)")
        assert schema_version_in_use(conn) is None
        cursor.execute("INSERT INTO settings VALUES (1, '2.6.7')")
        assert schema_version_in_use(conn) == "2.6.7"


def test_schema_version_other_errors_propagate(database: DbTarget) -> None:
    with connect(database, database="") as conn, pytest.raises(pymysql.err.MySQLError) as caught:
        schema_version_in_use(conn)
    assert caught.value.args[0] == ER.NO_DB_ERROR
