"""config.php parsing and rewriting, cross-checked against what PHP itself reads."""

from __future__ import annotations

from pathlib import Path

import pytest

from flowsafe.errors import ConfigError
from flowsafe.itflow.config_php import parse_config_php, read_php, rewrite_db_settings
from flowsafe.itflow.site import read_site
from flowsafe.secret import Secret
from tests.test_crypto_php import run_php

SETUP_WRITTEN = """<?php

$dbhost = 'localhost';
$dbusername = 'itflow';
$dbpassword = 'S3cret!';
$database = 'itflow';
$mysqli = mysqli_connect($dbhost, $dbusername, $dbpassword, $database) or die('Failed');
$config_app_name = 'ITFlow';
$config_base_url = 'itflow.example.com';
$config_https_only = TRUE;
$repo_branch = 'master';
$installation_id = 'abcdefghijklmnopqrstuvwxyz012345';
$config_enable_setup = 0;
$config_backup_key = 'backupkey';
"""

DB_LINES = "<?php\n$dbhost = 'h';\n$dbusername = 'u';\n$dbpassword = 'p';\n$database = 'd';\n"

ODD_PASSWORDS = [
    "it's",
    'say "hi"',
    "back\\slash\\",
    "\\'",
    "# not a comment // nor /* this */",
    "$dbhost {$x} ${y}",
    "new\nline\r\nand\ttab",
    "ünï 🔑",
    "",
    "?> <?php",
]


def _write(tmp_path: Path, text: str, name: str = "config.php") -> Path:
    path = tmp_path / name
    path.write_bytes(text.encode("utf-8"))
    return path


PHP_READ_CONFIG = """
include $in['path'];
$out = [];
foreach ($in['names'] as $name) { $out[$name] = $$name ?? null; }
"""


def _php_reads(path: Path, *names: str) -> dict[str, object]:
    result: dict[str, object] = run_php(PHP_READ_CONFIG, {"path": str(path), "names": names})
    return result


def test_reads_what_setup_writes(tmp_path: Path) -> None:
    config = parse_config_php(_write(tmp_path, SETUP_WRITTEN))
    assert (config.dbhost, config.dbusername, config.database) == ("localhost", "itflow", "itflow")
    assert config.dbpassword == Secret("S3cret!")
    assert config.app_name == "ITFlow"
    assert config.base_url == "itflow.example.com"
    assert config.installation_id == "abcdefghijklmnopqrstuvwxyz012345"
    assert config.backup_key == Secret("backupkey")
    assert config.backup_path is None
    assert config.values["config_https_only"] is True
    assert config.values["config_enable_setup"] == 0
    assert config.values["repo_branch"] == "master"
    assert "S3cret" not in repr(config)


def test_literals_comments_and_admin_lines(tmp_path: Path) -> None:
    text = DB_LINES + (
        "// $dbhost = 'commented';\n"
        "# $dbhost = 'hashed';\n"
        "/* $dbhost = 'block';\n   still comment */\n"
        "define('MY_CONSTANT', true);\n"
        "ini_set('memory_limit', '512M');\n"
        "if (PHP_SAPI === 'cli') { $cli_only = 1; }\n"
        "$flag = false; $nothing = Null; $negative = -5; $big = TrUe;\n"
        "$custom_setting = 'kept'; // trailing comment\n"
        "?>\n"
    )
    values = parse_config_php(_write(tmp_path, text)).values
    assert values["dbhost"] == "h"
    assert (values["flag"], values["nothing"], values["negative"], values["big"]) == (
        False,
        None,
        -5,
        True,
    )
    assert values["custom_setting"] == "kept"
    assert "cli_only" not in values


def test_double_quoted_escapes_match_php(tmp_path: Path) -> None:
    body = r"a\tb\nc\\d\"e\$f\x41\101\u{1F511}\q$1 $ end"
    path = _write(tmp_path, DB_LINES + f'$dbpassword = "{body}";\n')
    assert (
        parse_config_php(path).dbpassword.reveal() == _php_reads(path, "dbpassword")["dbpassword"]
    )


def test_single_quoted_keeps_other_backslashes(tmp_path: Path) -> None:
    path = _write(tmp_path, DB_LINES + r"$dbpassword = 'a\nb\'c\\d\x';" + "\n")
    assert parse_config_php(path).dbpassword.reveal() == "a\\nb'c\\d\\x"


@pytest.mark.parametrize("value", ["pw$suffix", "pw{$x}", "pw${x}", "pw$x[0]"])
def test_interpolating_string_is_an_error_for_db_settings(tmp_path: Path, value: str) -> None:
    path = _write(tmp_path, DB_LINES + f'$dbpassword = "{value}";\n')
    with pytest.raises(ConfigError, match=r"line 6: \$dbpassword must be a plain"):
        parse_config_php(path)


def test_interpolating_string_is_ignored_for_other_variables(tmp_path: Path) -> None:
    path = _write(tmp_path, DB_LINES + '$greeting = "hello $name";\n')
    assert "greeting" not in parse_config_php(path).values


def test_crlf_and_bom(tmp_path: Path) -> None:
    text = "\ufeff" + SETUP_WRITTEN.replace("\n", "\r\n")
    path = _write(tmp_path, text)
    assert parse_config_php(path).dbpassword.reveal() == "S3cret!"
    rewritten = rewrite_db_settings(
        read_php(path, "config"), host="h", user="u", password="p", database="d"
    )
    assert rewritten.startswith("\ufeff<?php\r\n\r\n$dbhost = 'h';\r\n")
    assert rewritten.count("\r\n") == text.count("\r\n")


@pytest.mark.parametrize("password", ODD_PASSWORDS)
def test_odd_passwords_round_trip(tmp_path: Path, password: str) -> None:
    text = rewrite_db_settings(
        SETUP_WRITTEN.replace("$mysqli", "// $mysqli"),
        host="db.local",
        user="o'brien",
        password=password,
        database="it\\flow",
    )
    path = _write(tmp_path, text)
    config = parse_config_php(path)
    assert config.dbpassword.reveal() == password
    assert (config.dbhost, config.dbusername, config.database) == (
        "db.local",
        "o'brien",
        "it\\flow",
    )
    php = _php_reads(path, "dbhost", "dbusername", "dbpassword", "database", "config_backup_key")
    assert php == {
        "dbhost": "db.local",
        "dbusername": "o'brien",
        "dbpassword": password,
        "database": "it\\flow",
        "config_backup_key": "backupkey",
    }


def test_rewrite_changes_only_the_four_values() -> None:
    text = DB_LINES.replace("'p'", '"old\\tpassword"') + "// keep me\n$x = 'y';\n"
    rewritten = rewrite_db_settings(text, host="H", user="U", password="P", database="D")
    expected = "<?php\n$dbhost = 'H';\n$dbusername = 'U';\n$dbpassword = 'P';\n$database = 'D';\n"
    assert rewritten == expected + "// keep me\n$x = 'y';\n"


def test_rewrite_needs_all_four() -> None:
    with pytest.raises(ConfigError, match=r"does not set \$database"):
        rewrite_db_settings(
            "<?php\n$dbhost='h';$dbusername='u';$dbpassword='p';\n",
            host="h",
            user="u",
            password="p",
            database="d",
        )


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("$dbpassword = ;\n", r"line 6: nothing after '\$dbpassword ='"),
        ("$dbpassword = 'never closed;\n$x = 1;\n", "line 6: string opened with ' is never closed"),
        ('$x = "open\n', 'line 6: string opened with " is never closed'),
        ("/* open comment\n", r"line 6: '/\*' comment is never closed"),
        ("$x = 'no semicolon'\n$y = 2;\n", "line 6: missing ';' after this value"),
        ("$x = 'last line'", "line 6: statement does not end with ';'"),
        ("$dbhost = 'a' . 'b';\n", r"line 6: \$dbhost must be a plain"),
        ("if (TRUE) { $database = 'other'; }\n", r"line 6: \$database must be a plain"),
        ("$dbpassword .= 'suffix';\n", r"line 6: \$dbpassword must be a plain"),
        ("$x = <<<EOT\nx\nEOT;\n", "line 6: heredoc"),
    ],
)
def test_parse_errors_name_the_line(tmp_path: Path, text: str, message: str) -> None:
    path = _write(tmp_path, DB_LINES + text)
    with pytest.raises(ConfigError, match=message) as caught:
        parse_config_php(path)
    assert str(caught.value).endswith("fix the line")
    assert "\n" not in str(caught.value)


def test_no_php_tag(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="line 1: no '<\\?php' opening tag"):
        parse_config_php(_write(tmp_path, "$dbhost = 'h';\n"))


def test_parse_error_never_shows_the_password(tmp_path: Path) -> None:
    path = _write(tmp_path, DB_LINES.replace("'p'", "'hunter2") + "\n")
    with pytest.raises(ConfigError) as caught:
        parse_config_php(path)
    assert "hunter2" not in str(caught.value)


@pytest.mark.parametrize("name", ["dbhost", "dbusername", "dbpassword", "database"])
def test_missing_required_variable(tmp_path: Path, name: str) -> None:
    text = "\n".join(line for line in DB_LINES.splitlines() if f"${name} " not in line)
    with pytest.raises(ConfigError, match=rf"does not set \${name} .*ITFlow folder"):
        parse_config_php(_write(tmp_path, text + "\n"))


def test_required_variable_must_be_a_string(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"does not set \$dbpassword to a string"):
        parse_config_php(_write(tmp_path, DB_LINES + "$dbpassword = NULL;\n"))


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=f"no ITFlow install at {tmp_path}: config.php not found"):
        parse_config_php(tmp_path / "config.php")


def test_unreadable_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read ITFlow config"):
        parse_config_php(tmp_path)


def test_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "config.php"
    path.write_bytes(DB_LINES.encode().replace(b"'p'", b"'\xe9'"))
    with pytest.raises(ConfigError, match="not UTF-8"):
        parse_config_php(path)


def test_read_site(tmp_path: Path) -> None:
    _write(tmp_path, SETUP_WRITTEN)
    (tmp_path / "includes").mkdir()
    _write(tmp_path, '<?php\nDEFINE("APP_VERSION", "26.08.2");\n', "includes/app_version.php")
    site = read_site(tmp_path)
    assert site.path == tmp_path
    assert site.config.database == "itflow"
    assert site.app_version == "26.08.2"
    assert site.git_commit is None
    assert site.expected_schema_version is None


def test_read_site_rejects_non_itflow_folders(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="folder does not exist"):
        read_site(tmp_path / "missing")
    with pytest.raises(ConfigError, match=r"config\.php not found"):
        read_site(tmp_path)
    with pytest.raises(ConfigError, match="not a folder"):
        read_site(_write(tmp_path, SETUP_WRITTEN))
    other_app = tmp_path / "other"
    other_app.mkdir()
    _write(other_app, "<?php\nreturn ['db' => ['host' => 'localhost']];\n")
    with pytest.raises(ConfigError, match=r"does not set \$dbhost .*is this an ITFlow folder"):
        read_site(other_app)
