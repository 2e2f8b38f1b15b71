"""``flowsafe update`` end to end through the CLI, on sample sites that are git clones of a
local bare repository (files owned by www-data, ITFlow-shaped update_cli.php): a good
update, a migration failing halfway (restore command, rollback), the updater's lying
``git pull``, an updater that refuses its user, and sites that cannot be updated."""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
import tempfile
from pathlib import Path

from flowsafe.config import DatabaseSettings
from flowsafe.init import InitOptions, run_init
from flowsafe.itflow.versions import app_version, expected_schema_version
from flowsafe.mariadb.connection import connect
from flowsafe.mariadb.instance import PrivateServer, private_server
from flowsafe.sample import build_site
from flowsafe.sample.upstream import ADDED_COLUMN, NEW_FILE
from flowsafe.schedule.demo import demo_schedule
from flowsafe.update.demo import demo_update
from tests.updating import Updatable, public_dir, updatable, web_db

__all__ = ["public_dir", "web_db"]  # fixtures


def _reasons(site: Updatable) -> list[str]:
    return [row["reason"] for row in site.snapshots()]


def _has_added_column(site: Updatable) -> bool:
    table, column = ADDED_COLUMN
    with connect(site.target) as conn, conn.cursor() as cur:
        cur.execute(f"SHOW COLUMNS FROM `{table}` LIKE %s", (column,))
        return cur.fetchone() is not None


def _failing_update(web_db: PrivateServer, base: Path, *args: str
                    ) -> tuple[Updatable, subprocess.CompletedProcess[str]]:
    site = updatable(web_db, base, failing=True)
    done = site.run("update", "--yes", *args)
    assert done.returncode == 1, done.stdout + done.stderr
    errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, done.stderr  # one line: which step, why, what next
    assert "failed at step 3 (as www-data: php" in errors[0]
    assert "database update failed at 2.6.9" in errors[0]
    assert "Applied database update 2.6.8" in done.stdout
    assert "post-update" not in _reasons(site)
    return site, done


def test_migration_failing_halfway(web_db: PrivateServer, public_dir: Path,
                                   tmp_path: Path) -> None:
    site, done = _failing_update(web_db, public_dir / tmp_path.name)
    assert site.schema() == "2.6.8" and site.head == site.upstream.new_commit  # half done
    (pre,) = site.snapshots()
    command = re.findall(r"put the site back with: (flowsafe .*)$", done.stderr.strip())[0]
    assert command == (f"flowsafe --config {site.config} restore {pre['short_id']} "
                       "--site itflow")
    argv = [sys.executable, "-m", "flowsafe", *shlex.split(command)[1:], "--yes"]
    restored = subprocess.run(argv, capture_output=True, text=True, check=False)
    assert restored.returncode == 0, restored.stderr
    assert site.schema() == "2.6.7" and not _has_added_column(site)
    assert site.head == site.upstream.old_commit


def test_git_pull_that_failed_is_caught(web_db: PrivateServer, public_dir: Path,
                                        tmp_path: Path) -> None:
    site = updatable(web_db, public_dir / tmp_path.name)
    planted = site.sample.path / NEW_FILE  # untracked, in the way of the pull
    planted.write_text("<?php // local\n")
    done = site.run("update", "--yes")
    assert done.returncode == 1
    assert "Update successful" in done.stdout  # ITFlow's updater says so regardless
    assert "failed at step 4 (check:" in done.stderr
    assert f"HEAD is at {site.upstream.old_commit[:8]}, not at the upstream commit" in done.stderr
    assert "put the site back with: flowsafe" in done.stderr
    assert _reasons(site) == ["pre-update"] and site.head == site.upstream.old_commit


def test_updater_refusing_its_user(web_db: PrivateServer, public_dir: Path,
                                   tmp_path: Path) -> None:
    site = updatable(web_db, public_dir / tmp_path.name)
    site.config.write_text(site.config.read_text().replace(
        "--update_db\"]\n", "--update_db\"]\nrun_as = \"nobody\"\n"))
    done = site.run("update", "--yes")
    assert done.returncode == 1
    assert "failed at step 2 (as nobody: php" in done.stderr
    assert "This script must be run by the file owner (www-data)" in done.stderr
    assert site.head == site.upstream.old_commit


def test_sites_that_cannot_be_updated(web_db: PrivateServer, public_dir: Path,
                                      tmp_path: Path) -> None:
    site = updatable(web_db, public_dir / tmp_path.name)
    path = site.sample.path

    def refused(*expected: str) -> None:
        done = site.run("update", "--yes")
        assert done.returncode == 2, done.stdout + done.stderr
        for text in expected:
            assert text in done.stderr
        assert site.snapshots() == []

    login = path / "login.php"
    original = login.read_text()
    login.write_text(original + "<?php // a local fix\n")
    refused("has local changes in tracked files (login.php)", "git -C")
    login.write_text(original)

    os.rename(path / ".git", path / ".git-away")
    refused("is not a git clone (no .git)")
    os.rename(path / ".git-away", path / ".git")

    def chown_git(uid: int) -> None:
        for folder, _, files in os.walk(path / ".git"):
            for name in [folder, *(os.path.join(folder, f) for f in files)]:
                os.lchown(name, uid, uid)

    chown_git(4242)
    refused("cannot tell who owns site 'itflow'", "uid 4242", "run_as")
    chown_git(33)
    site.config.write_text(site.config.read_text().replace(
        "--update_db\"]\n", "--update_db\"]\nrun_as = \"no-such-user\"\n"))
    refused("run_as = 'no-such-user' under [sites.itflow.update] names no account")
    assert site.head == site.upstream.old_commit


def _good_update(site: Updatable) -> None:
    up = site.upstream
    dry = site.run("update", "--site", "itflow", "--dry-run")  # no terminal, no --yes: no asking
    assert dry.returncode == 0, dry.stderr
    assert f"installed: ITFlow {up.old_app_version} (commit {up.old_commit[:8]})" in dry.stdout
    assert f"available: ITFlow {up.new_app_version} (commit {up.new_commit[:8]})" in dry.stdout
    assert "code expects 2.6.9" in dry.stdout and "pre-update backup" in dry.stdout
    before = site.snapshots()
    assert site.head == up.old_commit
    asked = site.run("update", "--site", "itflow")
    assert asked.returncode == 2 and "pass --yes" in asked.stderr

    done = site.run("update", "--site", "itflow", "--yes")
    assert done.returncode == 0, done.stdout + done.stderr
    # ITFlow's own output, live, then flowsafe's checks
    assert "Update successful" in done.stdout and "Applied database update 2.6.8" in done.stdout
    assert "login page: GET /login.php answered 200 with the login form" in done.stdout
    assert site.head == up.new_commit
    assert app_version(site.sample.path) == up.new_app_version
    assert expected_schema_version(site.sample.path) == site.schema() == up.new_schema_version
    rows = site.snapshots()[len(before):]
    assert [(r["site"], r["reason"], r["app_version"], r["schema_version"]) for r in rows] == [
        ("itflow", "pre-update", up.old_app_version, up.old_schema_version),
        ("itflow", "post-update", up.new_app_version, up.new_schema_version)]
    transcript = Path(re.findall(r"output is in (\S+)", done.stdout)[0])
    assert transcript.stat().st_mode & 0o777 == 0o600
    assert "Applied database update 2.6.9" in transcript.read_text()
    log = json.loads(site.ok("log", "--site", "itflow", "--json").stdout)
    update = next(run for run in log if run["action"] == "update")
    assert update["ok"] and update["duration"] > 0 and update["snapshot"] == rows[1]["id"]

    again = site.run("update", "--site", "itflow", "--yes")
    assert again.returncode == 0 and "is up to date" in again.stdout
    assert len(site.snapshots()) == len(before) + 2


def _rolled_back(site: Updatable) -> None:
    before = site.snapshots()
    done = site.run("update", "--site", "other", "--yes", "--rollback-on-failure")
    assert done.returncode == 1
    errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, done.stderr  # one line: which step, why, what was done
    assert "failed at step 3 (as www-data: php" in errors[0]
    assert "database update failed at 2.6.9" in errors[0]
    assert "rolled back: restored the pre-update snapshot" in errors[0]
    assert "put the site back with" not in done.stderr
    path = site.sample.path
    assert site.head == site.upstream.old_commit
    assert app_version(path) == site.upstream.old_app_version
    assert not (path / NEW_FILE).exists()
    assert not (path / "admin" / "database_updates" / "2.6.8.php").exists()
    assert site.schema() == "2.6.7" and not _has_added_column(site)
    assert (path / "scripts" / "update_cli.php").stat().st_uid == 33  # www-data again
    assert [r["reason"] for r in site.snapshots()[len(before):]] == ["pre-update", "pre-restore"]


def test_two_sites_on_a_schedule_with_hooks_and_updates(web_db: PrivateServer, public_dir: Path,
                                                        tmp_path: Path) -> None:
    """The whole story unattended: two sites in one config, nightly units, hooks, then a
    good update of one site and a failing update of the other, rolled back."""
    base = public_dir / tmp_path.name
    good = updatable(web_db, base, name="itflow")
    bad = updatable(web_db, base, name="other", failing=True)
    assert good.config == bad.config
    seen = base / "hook.log"
    with good.config.open("a") as toml:
        toml.write(f'\n[sites."other".hooks]\nbefore_backup = "echo $FLOWSAFE_REASON >> {seen}"'
                   f'\nafter_backup = "echo $FLOWSAFE_SNAPSHOT >> {seen}"\n')
    root = base / "root"
    (root / "run" / "systemd" / "system").mkdir(parents=True)
    env = {"FLOWSAFE_SCHEDULE_ROOT": str(root)}
    assert good.run("schedule", "install", env=env).returncode == 0
    units = root / "etc" / "systemd" / "system"
    names = [str(p) for p in sorted(units.glob("flowsafe-*"))]
    assert subprocess.run(["systemd-analyze", "verify", *names], capture_output=True,
                          text=True, check=False).stderr == ""
    service = (units / "flowsafe-backup.service").read_text()
    plain_env = {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}
    for line in re.findall(r"^ExecStart=(.*)$", service, re.M):  # as systemd runs them
        done = subprocess.run(shlex.split(line), capture_output=True, text=True, env=plain_env,
                              check=False)
        assert done.returncode == 0, (line, done.stderr)
    assert [(r["site"], r["reason"]) for r in good.snapshots()] == [
        ("itflow", "nightly"), ("other", "nightly")]
    nightly = good.snapshots()[1]["id"]
    assert seen.read_text().split() == ["nightly", nightly]

    _good_update(good)
    _rolled_back(bad)
    assert good.run("status").returncode == 0
    runs = [(r["site"], r["action"], r["reason"].split(" ")[0], r["ok"])
            for r in json.loads(good.ok("log", "--json").stdout)]
    assert runs[:4] == [("itflow", "backup", "nightly", True), ("other", "backup", "nightly", True),
                        ("itflow", "prune", "", True), ("other", "prune", "", True)]
    assert ("itflow", "update", "26.08.2", True) in runs
    assert ("other", "update", "26.08.2", False) in runs
    assert ("other", "restore", bad.snapshots()[-2]["short_id"], True) in runs


def test_demo_steps(tmp_path: Path) -> None:
    """The update and schedule chapters the demo tells, in a private (0700) temp folder
    as the demo makes one, with its own private server."""
    with tempfile.TemporaryDirectory(prefix="flowsafe-demo-test-") as tmp:
        root = Path(tmp)
        root.chmod(0o711)  # as the demo does: its servers' users pass through
        with private_server(root / "servers", client_group="www-data") as server:
            sample = build_site(root / "www" / "itflow", server.target(), scale=0.1)
            config_file = root / "etc" / "flowsafe.toml"
            run_init(config_file, InitOptions(
                site_path=sample.path, name="demo", repo_url=str(root / "repository"),
                state_dir=root / "state", database=DatabaseSettings(socket=server.socket,
                                                                    user="root")))
            result = demo_update(config_file, "demo", sample, server, root, lambda *_: None)
            assert result.outcome == "updated" and result.plan.available_app == "26.09.0"
            installed = demo_schedule(config_file, root / "system")
            assert installed.kind == "systemd" and installed.config == str(config_file)
            assert [job.name for job in installed.jobs] == ["backup", "drill"]
    assert "FLOWSAFE_SCHEDULE_ROOT" not in os.environ
