"""Hooks around a backup through the CLI: what they get in their environment, a failing
``before_backup`` (no backup, ``on_error`` runs), one that hangs (killed with its process
group at its timeout), a failing ``after_backup``, and output logged as it is."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from flowsafe.mariadb.instance import PrivateServer
from flowsafe.sample import build_site
from tests.cli import SiteUnderTest, alive


@pytest.fixture(scope="module")
def site(mariadb_server: PrivateServer, tmp_path_factory: pytest.TempPathFactory
         ) -> SiteUnderTest:
    """One site for every hook test; each test writes the hooks it needs."""
    tmp_path = tmp_path_factory.mktemp("hooks")
    sample = build_site(tmp_path / "www" / "itflow", mariadb_server.target(),
                        database="hooks", seed=4, scale=0.2)
    made = SiteUnderTest(sample, mariadb_server, tmp_path)
    made.ok("init", "--site", str(sample.path), "--name", "itflow", "--repo",
            str(tmp_path / "repo"), "--state-dir", str(tmp_path / "state"), "--db-socket",
            mariadb_server.socket)
    return made


def hooks(site: SiteUnderTest, **lines: str | int) -> None:
    table = "\n".join(f"{key} = {json.dumps(value)}" for key, value in lines.items())
    config = site.config.read_text().split('\n[sites."itflow".hooks]')[0]
    site.config.write_text(f'{config}\n[sites."itflow".hooks]\n{table}\n')


def test_hooks_see_site_snapshot_and_result(site: SiteUnderTest, tmp_path: Path
                                            ) -> None:
    seen = tmp_path / "seen"
    record = f'echo "$FLOWSAFE_HOOK $FLOWSAFE_SITE $FLOWSAFE_REASON $FLOWSAFE_RESULT ' \
             f'$FLOWSAFE_SNAPSHOT" >> {seen}'
    hooks(site, before_backup=f"{record}; echo 'db_password=hunter2 token: sk_live_x' >&2",
          after_backup=record, on_error=record)
    done = site.run("backup", "--reason", "nightly")
    assert done.returncode == 0, done.stderr
    snapshot = site.snapshots()[-1]
    assert [line.strip() for line in seen.read_text().splitlines()] == [
        "before_backup itflow nightly started",
        f"after_backup itflow nightly ok {snapshot['id']}"]
    # the admin's hook output is logged as it is, secret-looking or not
    assert "INFO flowsafe.hooks: itflow before_backup: db_password=hunter2 token: sk_live_x" \
        in done.stderr.splitlines()


def test_failing_before_backup_stops_that_backup(site: SiteUnderTest, tmp_path: Path) -> None:
    seen = tmp_path / "seen"
    hooks(site, before_backup="echo 'maintenance page: nginx reload failed' >&2; exit 1",
          on_error=f'echo "$FLOWSAFE_RESULT: $FLOWSAFE_ERROR" > {seen}')
    before = site.snapshots()
    done = site.run("backup")
    assert done.returncode == 1
    message = ("the before_backup hook of site 'itflow' failed (exit code 1): maintenance "
               "page: nginx reload failed; the backup of site 'itflow' did not run")
    assert done.stderr.strip().splitlines()[-1] == f"error: site itflow: {message}"
    assert site.snapshots() == before
    assert seen.read_text().strip() == f"failed: {message}"
    run = json.loads(site.ok("log", "--json").stdout)[-1]
    assert (run["action"], run["ok"], run["error"]) == ("backup", False, message)


def test_hanging_hook_is_killed_with_its_group(site: SiteUnderTest, tmp_path: Path) -> None:
    pid_file = tmp_path / "sleeper"
    hooks(site, before_backup=f"sleep 300 & echo $! > {pid_file}; sleep 300",
          timeout_seconds=1)
    before = site.snapshots()
    started = time.monotonic()
    done = site.run("backup")
    assert done.returncode == 1 and time.monotonic() - started < 30
    # rich must not read [sites.itflow.hooks] as markup and drop it
    assert ("error: site itflow: the before_backup hook of site 'itflow' did not finish "
            "within 1 s: killed it with its process group; make it faster or raise "
            "timeout_seconds under [sites.itflow.hooks]; the backup of site 'itflow' did not "
            "run") in done.stderr
    sleeper = int(pid_file.read_text())
    deadline = time.monotonic() + 5
    while alive(sleeper):
        assert time.monotonic() < deadline, "the hook's background child survived"
        time.sleep(0.05)
    assert site.snapshots() == before


def test_failing_after_backup_keeps_the_snapshot(site: SiteUnderTest) -> None:
    hooks(site, after_backup="exit 7")
    before = site.snapshots()
    done = site.run("backup")
    assert done.returncode == 1
    snapshot = site.snapshots()[-1]
    assert len(site.snapshots()) == len(before) + 1
    assert (f"the backup is stored (snapshot {snapshot['short_id']}), but the after_backup "
            "hook of site 'itflow' failed (exit code 7)") in done.stderr
    status = site.run("status")
    assert "last attempt on this machine" in status.stdout and "FAILED" in status.stdout
    assert not os.environ.get("FLOWSAFE_SITE")  # the hooks' variables stay in the hooks
