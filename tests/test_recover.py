"""``flowsafe recover`` played by a stranger: a fresh MariaDB (a private server standing
in for the new machine's), empty folders, only the repository, its password and the
keys from the recovery sheet; then every bad input and a kill at each step."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pymysql
import pytest

from flowsafe.itflow.cron import cron_lines
from flowsafe.mariadb.connection import DbTarget, connect
from flowsafe.mariadb.instance import PrivateServer, private_server
from flowsafe.sample import build_site
from flowsafe.secret import Secret, write_private
from tests.cli import SiteUnderTest, flowsafe
from tests.probes import db_state

STEPS = ["recover-attach", "db-load", "recover-restore", "recover-owner", "recover-verify",
         "recover-config", "recover-backup"]
WRONG_KEY = "ZZotherKEY123456"


@dataclass
class Sheet:
    """What the recovery sheet gives a stranger: the repository and its secrets."""

    repo: Path
    password: Path
    key: Path
    signing_key: Path
    old: SiteUnderTest


@pytest.fixture(scope="module")
def sheet(mariadb_server: PrivateServer, tmp_path_factory: pytest.TempPathFactory) -> Sheet:
    tmp = tmp_path_factory.mktemp("old-server")
    sample = build_site(tmp / "www" / "itflow", mariadb_server.target(), database="rc_old",
                        seed=23)
    old = SiteUnderTest(sample, mariadb_server, tmp)
    old.ok("init", "--site", str(sample.path), "--name", "itflow", "--repo", str(tmp / "repo"),
           "--state-dir", str(tmp / "state"), "--db-socket", mariadb_server.socket,
           "--db-user", "root")
    old.ok("backup", "--reason", "nightly")
    papers = tmp_path_factory.mktemp("sheet")
    shutil.copy(old.config.parent / "default.password", papers / "repo.pw")
    shutil.copy(old.config.parent / "itflow.signing-key", papers / "signing.key")
    write_private(papers / "master.key", sample.master_key + "\n")
    return Sheet(tmp / "repo", papers / "repo.pw", papers / "master.key",
                 papers / "signing.key", old)


@pytest.fixture(scope="module")
def new_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrivateServer]:
    """The new machine's MariaDB: fresh, root over its socket, www-data may reach it."""
    with private_server(tmp_path_factory.mktemp("new-server"), client_group="www-data") as srv:
        yield srv


class Stranger:
    """A new machine's flowsafe: its own config, state and target folder."""

    def __init__(self, sheet: Sheet, server: PrivateServer, tmp: Path, database: str) -> None:
        self.sheet, self.server, self.database = sheet, server, database
        self.config = tmp / "etc" / "flowsafe.toml"
        self.to = tmp / "www" / "itflow"
        self.state = tmp / "state"

    def recover(self, *extra: str, key: Path | None = None,
                env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        return flowsafe(self.config, "recover", "--repo", str(self.sheet.repo),
                        "--repo-password-file", str(self.sheet.password), "--key-file",
                        str(key or self.sheet.key), "--signing-key-file",
                        str(self.sheet.signing_key), "--to", str(self.to), "--database",
                        self.database, "--db-socket", self.server.socket, "--state-dir",
                        str(self.state), *extra, env=env)

    def tables(self) -> list[str]:
        with connect(self.server.target()) as conn, conn.cursor() as cur:
            cur.execute("SELECT TABLE_NAME FROM information_schema.TABLES WHERE "
                        "TABLE_SCHEMA = %s", (self.database,))
            return [str(row[0]) for row in cur.fetchall()]


@pytest.fixture
def stranger(sheet: Sheet, new_server: PrivateServer, tmp_path: Path) -> Stranger:
    return Stranger(sheet, new_server, tmp_path, f"itflow_{tmp_path.name[-8:]}".replace("-", "_"))


def _app_password(config_php: str) -> str:
    found = re.search(r"\$dbpassword = '([^']+)';", config_php)
    assert found is not None, config_php
    return found.group(1)


def test_a_stranger_recovers_the_site(stranger: Stranger, sheet: Sheet) -> None:
    done = stranger.recover("--base-url", "https://itflow.new.example/", "--yes")
    assert done.returncode == 0, done.stderr
    assert db_state(stranger.server.target(stranger.database)) == db_state(sheet.old.target)
    php = (stranger.to / "config.php").read_text()
    assert "$dbusername = 'itflow';" in php and f"$database = '{stranger.database}';" in php
    assert len(_app_password(php)) == 32
    assert "$config_base_url = 'itflow.new.example';" in php
    www = {os.lstat(p).st_uid for p in [stranger.to, *stranger.to.rglob("*")]}
    assert www == {int(subprocess.run(["id", "-u", "www-data"], capture_output=True, text=True,
                                      check=True).stdout)}
    assert "login form" in done.stdout and "PHP as www-data" in done.stdout
    assert re.search(r"(\d+) of \1 credentials decrypt", done.stdout), done.stdout
    assert "server_name itflow.new.example;" in done.stdout and "<VirtualHost *:80>" in \
        done.stdout
    assert "flowsafe schedule install" in done.stdout
    app = DbTarget(stranger.database, socket=stranger.server.socket, user="itflow",
                   password=Secret(_app_password(php)))
    with connect(app) as conn, conn.cursor() as cur:  # the app's account, limited to its db
        cur.execute("SELECT COUNT(*) FROM clients")
        with pytest.raises(pymysql.err.MySQLError):
            cur.execute("CREATE DATABASE elsewhere")

    after = flowsafe(stranger.config, "backup")
    assert after.returncode == 0, after.stderr
    reasons = [row["reason"] for row in json.loads(flowsafe(
        stranger.config, "snapshots", "--site", "itflow", "--json").stdout)]
    assert reasons[-2:] == ["post-recover", "manual"]
    again = stranger.recover("--yes")
    assert again.returncode == 2 and "already configured here" in again.stderr


def test_dry_run_never_asks_and_changes_nothing(stranger: Stranger) -> None:
    dry = stranger.recover("--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert "Recover site 'itflow'" in dry.stdout and "owned by www-data" in dry.stdout
    planned = json.loads(stranger.recover("--dry-run", "--json").stdout)
    assert planned["done"] is False and planned["plan"]["web_user"] == "www-data"
    assert planned["plan"]["app_user"] == "itflow" and planned["plan"]["resuming"] is None
    assert not stranger.to.exists() and not stranger.config.exists()
    assert stranger.tables() == []


def test_bad_input(stranger: Stranger, sheet: Sheet, tmp_path: Path) -> None:
    wrong = tmp_path / "wrong.pw"
    write_private(wrong, "not the password\n")
    bad = flowsafe(stranger.config, "recover", "--repo", str(sheet.repo),
                   "--repo-password-file", str(wrong), "--to", str(stranger.to),
                   "--db-socket", stranger.server.socket, "--yes")
    assert bad.returncode == 2 and "password" in bad.stderr, bad.stderr

    empty = tmp_path / "empty-repo"
    made = flowsafe(tmp_path / "scratch.toml", "init", "--repo", str(empty), "--state-dir",
                    str(tmp_path / "scratch-state"))
    assert made.returncode == 0, made.stderr
    bad = flowsafe(stranger.config, "recover", "--repo", str(empty), "--repo-password-file",
                   str(tmp_path / "default.password"), "--db-socket", stranger.server.socket,
                   "--to", str(stranger.to), "--yes")
    assert bad.returncode == 2 and "holds no flowsafe backup" in bad.stderr, bad.stderr

    two = tmp_path / "two-sites"
    shutil.copytree(sheet.repo, two)
    (tmp_path / "second").mkdir()
    subprocess.run(["restic", "-r", str(two), "--password-file", str(sheet.password), "backup",
                    "--tag", "flowsafe,site:second,reason:nightly", str(tmp_path / "second")],
                   check=True, capture_output=True)
    bad = flowsafe(stranger.config, "recover", "--repo", str(two), "--repo-password-file",
                   str(sheet.password), "--db-socket", stranger.server.socket, "--to",
                   str(stranger.to), "--yes")
    assert bad.returncode == 2 and "several sites: pass --site NAME" in bad.stderr
    assert re.search(r"itflow \(\d+ snapshots, newest \w{8} of ", bad.stderr), bad.stderr
    assert "second (1 snapshots" in bad.stderr

    stranger.to.mkdir(parents=True)
    (stranger.to / "index.html").write_text("Debian's default page\n")
    bad = stranger.recover("--yes")
    assert bad.returncode == 2 and "is not empty" in bad.stderr, bad.stderr
    shutil.rmtree(stranger.to)

    with connect(stranger.server.target()) as conn, conn.cursor() as cur:
        cur.execute(f"CREATE DATABASE `{stranger.database}`")
        cur.execute(f"CREATE TABLE `{stranger.database}`.`mine` (id INT)")
    bad = stranger.recover("--yes")
    assert bad.returncode == 2 and "is not empty" in bad.stderr and "--replace-existing" in \
        bad.stderr, bad.stderr
    assert stranger.tables() == ["mine"] and not stranger.to.exists()
    assert not (stranger.state / "recover").exists()  # a re-run may not take it for its own

    bad = stranger.recover("--yes", "--db-socket", str(tmp_path / "none" / "mysqld.sock"))
    assert bad.returncode == 2 and "MariaDB is not running" in bad.stderr, bad.stderr

    tools = tmp_path / "bin"
    tools.mkdir()
    os.symlink(str(shutil.which("restic")), tools / "restic")
    bad = stranger.recover("--yes", env={"PATH": str(tools)})
    assert bad.returncode == 2, bad.stderr
    assert "apt-get install php-cli php-mysql" in bad.stderr, bad.stderr
    assert not stranger.config.exists()


def test_a_key_that_does_not_match_keeps_the_restore(stranger: Stranger,
                                                      tmp_path: Path) -> None:
    other = tmp_path / "other.key"
    write_private(other, WRONG_KEY + "\n")
    bad = stranger.recover("--yes", key=other)
    assert bad.returncode == 3, bad.stderr
    assert "does not match site 'itflow'" in bad.stderr and "the restore stays" in bad.stderr
    assert (stranger.to / "config.php").exists() and stranger.tables()
    aside = stranger.to.with_name("aside")
    stranger.to.rename(aside)
    gone = stranger.recover("--yes")
    assert gone.returncode == 2 and "which is gone now" in gone.stderr, gone.stderr
    assert f"rm -rf {stranger.to}" in gone.stderr
    aside.rename(stranger.to)
    done = stranger.recover("--yes")  # the right key finishes the job
    assert done.returncode == 0, done.stderr
    assert "Finishing the recover" in done.stdout and "credentials decrypt" in done.stdout


def test_killed_at_each_step_a_rerun_finishes(stranger: Stranger, sheet: Sheet) -> None:
    for step in STEPS:
        killed = stranger.recover("--yes", env={"FLOWSAFE_FAULT": step})
        assert killed.returncode == -9, (step, killed.stderr)
        state = stranger.state / "recover" / "itflow.json"
        if step != "recover-attach":
            assert state.exists(), step
        if step in STEPS[:STEPS.index("recover-config")]:
            assert "[sites" not in stranger.config.read_text(), step
    other = flowsafe(stranger.config, "recover", "--repo", str(sheet.repo),
                     "--repo-password-file", str(sheet.password), "--to",
                     str(stranger.to.parent / "elsewhere"), "--db-socket",
                     stranger.server.socket, "--state-dir", str(stranger.state), "--yes")
    assert other.returncode == 2 and "was interrupted" in other.stderr, other.stderr
    assert f"rm -rf {stranger.to}" in other.stderr
    done = stranger.recover("--yes")
    assert done.returncode == 0, done.stderr
    assert not (stranger.state / "recover" / "itflow.json").exists()
    assert db_state(stranger.server.target(stranger.database)) == db_state(sheet.old.target)
    assert flowsafe(stranger.config, "backup").returncode == 0
    assert not list(stranger.to.parent.glob(".itflow.landing-*"))


def test_attached_config_reads_the_repository(stranger: Stranger, sheet: Sheet,
                                              tmp_path: Path) -> None:
    attach = flowsafe(stranger.config, "init", "--repo", str(sheet.repo),
                      "--repo-password-file", str(sheet.password), "--state-dir",
                      str(stranger.state))
    assert attach.returncode == 0, attach.stderr
    listed = flowsafe(stranger.config, "snapshots", "--json")
    assert listed.returncode == 0, listed.stderr
    assert {row["site"] for row in json.loads(listed.stdout)} == {"itflow"}
    assert flowsafe(stranger.config, "snapshots", "--site", "itflow").returncode == 0
    missing = flowsafe(stranger.config, "snapshots", "--site", "nosuch")
    assert missing.returncode == 2 and "sites found: itflow" in missing.stderr
    verify = flowsafe(stranger.config, "key", "verify", "--key-file", str(sheet.key),
                      "--signing-key-file", str(sheet.signing_key))
    assert verify.returncode == 0, verify.stderr
    missing = flowsafe(stranger.config, "key", "verify", "--site", "nosuch", "--key-file",
                       str(sheet.key))
    assert missing.returncode == 2 and "sites found: itflow" in missing.stderr
    phrase = tmp_path / "phrase"
    write_private(phrase, "a long export pass phrase\n")
    export = flowsafe(stranger.config, "credentials", "export", "--format", "csv", "--out",
                      str(tmp_path / "all.csv.age"), "--key-file", str(sheet.key),
                      "--passphrase-file", str(phrase), "--signing-key-file",
                      str(sheet.signing_key))
    assert export.returncode == 0 and "Exported" in export.stdout, export.stderr
    drill = flowsafe(stranger.config, "drill", "--signing-key-file", str(sheet.signing_key),
                     "--key-file", str(sheet.key), "--json")
    assert drill.returncode == 0, drill.stderr


def test_restore_elsewhere_uses_an_empty_database_and_an_application_account(
        stranger: Stranger, sheet: Sheet) -> None:
    attach = flowsafe(stranger.config, "init", "--repo", str(sheet.repo),
                      "--repo-password-file", str(sheet.password), "--state-dir",
                      str(stranger.state))
    assert attach.returncode == 0, attach.stderr
    with connect(stranger.server.target()) as conn, conn.cursor() as cur:
        cur.execute(f"CREATE DATABASE `{stranger.database}`")  # made by the admin first
    where = ("restore", "latest", "--to-path", str(stranger.to), "--to-db", stranger.database,
             "--db-socket", stranger.server.socket, "--db-user", "itflow_app",
             "--signing-key-file", str(sheet.signing_key))
    done = flowsafe(stranger.config, *where, "--base-url", "http://moved.example", "--yes")
    assert done.returncode == 0, done.stderr
    php = (stranger.to / "config.php").read_text()
    assert "$dbusername = 'itflow_app';" in php and len(_app_password(php)) == 32
    assert "$config_base_url = 'moved.example';" in php
    assert db_state(stranger.server.target(stranger.database)) == db_state(sheet.old.target)
    dry = flowsafe(stranger.config, *where[:2], "--to-path", str(stranger.to.parent / "x"),
                   *where[4:], "--dry-run")  # no terminal, no --yes: a dry run never asks
    assert dry.returncode == 2 and "is not empty" in dry.stderr, dry.stderr
    assert "Traceback" not in dry.stderr


def test_cron_lines_follow_the_release(tmp_path: Path) -> None:
    assert cron_lines(tmp_path, "www-data") == []
    (tmp_path / "scripts").mkdir()
    (tmp_path / "scripts" / "cron_mail_queue.php").write_text("<?php\n")
    (tmp_path / "scripts" / "cron.php").write_text("<?php\n")
    assert cron_lines(tmp_path, "www-data") == [
        f"0 2 * * * www-data php {tmp_path}/scripts/cron.php 2>&1 | logger -t itflow-cron",
        f"* * * * * www-data php {tmp_path}/scripts/cron_mail_queue.php 2>&1 | logger -t "
        "itflow-cron"]
    (tmp_path / "cron").mkdir()
    (tmp_path / "cron" / "cron.php").write_text("<?php\n")
    (tmp_path / "includes").mkdir()
    (tmp_path / "includes" / "cron_jobs.php").write_text("<?php\n")
    assert cron_lines(tmp_path, "www-data") == [
        f"* * * * * www-data php {tmp_path}/cron/cron.php 2>&1 | logger -t itflow-cron"]
