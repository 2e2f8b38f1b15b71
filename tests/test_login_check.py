"""The login-page check shared by the drill and the update: PHP as an unprivileged account
on a read-only copy, the login form required (an error page, a database that does not
answer or ITFlow's HTTPS-only notice fail it); real PHP, real MariaDB."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import pytest

from flowsafe.errors import FlowsafeError
from flowsafe.itflow import login_check
from flowsafe.mariadb.instance import PrivateServer
from flowsafe.sample import SampleSite, build_site

# A login page that shows its form only when it runs as a user other than root, cannot
# write into its own tree nor the original one, and reads nothing through a planted symlink.
PROBE_PHP = """<?php
$original = %r;
$root = posix_geteuid() === 0;
$wrote = @file_put_contents(__DIR__ . '/written', 'x') !== false
    || @file_put_contents($original . '/written', 'x') !== false;
$leaked = @file_get_contents(__DIR__ . '/shadow') !== false;
if ($root || $wrote || $leaked) { echo "root=$root wrote=$wrote leaked=$leaked"; exit; }
echo '<form method="post"><input type="email" name="email">';
echo '<input type="password" name="password"></form>';
"""


@pytest.fixture(scope="module")
def site(mariadb_server: PrivateServer, tmp_path_factory: pytest.TempPathFactory) -> SampleSite:
    return build_site(tmp_path_factory.mktemp("login") / "itflow", mariadb_server.target(),
                      database="login_check", seed=3, scale=0.1)


def _tree(site: SampleSite, tmp_path: Path) -> Path:
    tree = tmp_path / "tree"
    shutil.copytree(site.path, tree, ignore=shutil.ignore_patterns("uploads"))
    return tree


def _leftovers() -> list[Path]:
    return list(Path(tempfile.gettempdir()).glob(f"{login_check.PREFIX}*"))


def test_login_form_served_by_www_data(site: SampleSite, mariadb_server: PrivateServer) -> None:
    detail = login_check.check(site.path, socket=mariadb_server.socket)
    assert detail.startswith("GET /login.php answered 200 with the login form")
    assert detail.endswith("PHP as www-data)")
    assert _leftovers() == []


def test_php_is_unprivileged_and_reads_only_its_copy(site: SampleSite, tmp_path: Path,
                                                    mariadb_server: PrivateServer) -> None:
    private = tmp_path / "private"  # like the drill's work folder: 0700, root's
    private.mkdir(mode=0o700)
    tree = _tree(site, private)
    tree.chmod(0o777)  # even a world-writable original is not reachable from the copy
    (tree / "login.php").write_text(PROBE_PHP % str(tree))
    (tree / "shadow").symlink_to("/etc/shadow")
    assert "with the login form" in login_check.check(tree, socket=mariadb_server.socket)
    assert not (tree / "written").exists()


def test_https_only_notice_fails(site: SampleSite, tmp_path: Path,
                                 mariadb_server: PrivateServer) -> None:
    tree = _tree(site, tmp_path)
    login = tree / "login.php"  # as an ITFlow that ignores the proxy's header would answer
    login.write_text(login.read_text().replace("$_SERVER['HTTP_X_FORWARDED_PROTO'] !== 'https'",
                                               "true"))
    with pytest.raises(FlowsafeError, match=r"answered 200 without the login form .*"
                                            r"'Login is restricted as ITFlow defaults"):
        login_check.check(tree, socket=mariadb_server.socket)


def test_database_that_does_not_answer_fails(site: SampleSite, tmp_path: Path,
                                             mariadb_server: PrivateServer) -> None:
    tree = _tree(site, tmp_path)
    config = tree / "config.php"
    config.write_text(config.read_text().replace("$dbpassword = '", "$dbpassword = 'wrong"))
    with pytest.raises(FlowsafeError, match=r"GET /login\.php answered 500"):
        login_check.check(tree, socket=mariadb_server.socket)
    assert _leftovers() == []


def test_missing_socket_is_named(site: SampleSite, tmp_path: Path) -> None:
    with pytest.raises(FlowsafeError, match=r"no database socket at .*/none\.sock"):
        login_check.check(site.path, socket=str(tmp_path / "none.sock"))
