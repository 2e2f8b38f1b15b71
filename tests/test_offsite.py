"""The off-site copy through the real CLI: a local repository and a real S3 server
(SeaweedFS) as the second one; copies, retention per repository, a drill from the copy,
and the faults: wrong S3 credentials, S3 stopped, ``kill -9`` in the middle of a copy."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
from pyrage import x25519

from flowsafe.mariadb.instance import PrivateServer
from flowsafe.sample import SampleSite, build_site
from flowsafe.secret import write_private
from tests.cli import SiteUnderTest, alive, children, command_line, edit_config, start
from tests.s3 import S3Server, seaweedfs

OFFSITE_PASSWORD = "the off-site password, not the local one"


@pytest.fixture(scope="module")
def sample(mariadb_server: PrivateServer, tmp_path_factory: pytest.TempPathFactory
           ) -> SampleSite:
    root = tmp_path_factory.mktemp("www-offsite")
    return build_site(root / "itflow", mariadb_server.target(), database="itflow_offsite",
                      seed=13, scale=0.3)


def _site(sample: SampleSite, server: PrivateServer, tmp: Path, s3: S3Server,
          secret_key: str | None = None) -> SiteUnderTest:
    """A site backed up locally, with ``offsite`` on S3 (its own bucket and password)."""
    made = SiteUnderTest(sample, server, tmp)
    made.ok("init", "--site", str(sample.path), "--name", "itflow", "--repo", str(tmp / "repo"),
            "--state-dir", str(tmp / "state"), "--db-socket", server.socket)
    password = tmp / "etc" / "offsite.password"
    write_private(password, OFFSITE_PASSWORD + "\n")
    keys = {k: v.reveal() for k, v in s3.environment(secret_key).items()}
    bucket = "off-" + re.sub("[^a-z0-9]", "", tmp.name.lower())[-20:]
    edit_config(made.config, replace={"copy_to = []": 'copy_to = ["offsite"]'}, append=(
        f'[repositories.offsite]\nurl = "{s3.url(bucket)}"\n'
        f'password_file = "{password}"\nenvironment = {json.dumps(keys).replace(":", " =")}\n'))
    return made


def _restic(site: SiteUnderTest, repo: str, *args: str) -> str:
    config = site.config.read_text()
    if repo == "offsite":
        url = config.split("[repositories.offsite]")[1].split('url = "')[1].split('"')[0]
        env = {"RESTIC_REPOSITORY": url,
               "RESTIC_PASSWORD_FILE": str(site.config.parent / "offsite.password"),
               **json.loads(config.split("environment = ")[-1].split("\n")[0]
                            .replace(" =", ":"))}
    else:
        env = {"RESTIC_REPOSITORY": str(site.tmp / "repo"),
               "RESTIC_PASSWORD_FILE": str(site.config.parent / "default.password")}
    done = subprocess.run(["restic", *args], env={**os.environ, **env}, capture_output=True,
                          text=True, check=True)
    return done.stdout


def _by_repository(site: SiteUnderTest) -> dict[str, list[dict[str, Any]]]:
    rows: dict[str, list[dict[str, Any]]] = {}
    for row in site.snapshots():
        rows.setdefault(row["repository"], []).append(row)
    return rows


def _status(site: SiteUnderTest) -> dict[str, Any]:
    done = site.run("status", "--json")
    assert done.returncode in (0, 1), done.stderr
    row: dict[str, Any] = json.loads(done.stdout)[0]
    return row


def test_copy_prune_and_drill_from_the_s3_copy(
        sample: SampleSite, mariadb_server: PrivateServer, s3_server: S3Server,
        tmp_path: Path) -> None:
    site = _site(sample, mariadb_server, tmp_path, s3_server)
    key = tmp_path / "master.key"
    write_private(key, sample.master_key + "\n")
    identity = x25519.Identity.generate()
    identity_file = tmp_path / "age.identity"
    write_private(identity_file, str(identity) + "\n")
    site.ok("key", "escrow", "--key-file", str(key), "--age-recipient",
            str(identity.to_public()))

    done = site.ok("backup")
    assert "failed" not in done.stderr  # no warning: the copy went through
    repos = _by_repository(site)
    assert [len(repos["default"]), len(repos["offsite"])] == [1, 1]
    assert repos["offsite"][0]["time"] == repos["default"][0]["time"]
    local = json.loads(_restic(site, "default", "cat", "config"))
    remote = json.loads(_restic(site, "offsite", "cat", "config"))
    assert remote["version"] == 2 and remote["id"] != local["id"]
    assert remote["chunker_polynomial"] == local["chunker_polynomial"]
    keys = json.loads(_restic(site, "offsite", "snapshots", "--json", "--tag",
                              "flowsafe-key,site:itflow"))
    assert len(keys) == 1  # the escrowed key travels with the backups

    site.ok("backup", "--reason", "nightly")
    again = site.ok("copy", "--json")
    assert json.loads(again.stdout)[0] | {"seconds": 0} == {
        "site": "itflow", "repository": "offsite", "ok": True, "copied": 0,
        "already_there": 3, "created": False, "seconds": 0, "error": None, "exit_code": 0}
    assert [len(v) for v in _by_repository(site).values()] == [2, 2]

    edit_config(site.config, replace={"keep_last = 3": "keep_last = 1",
                                      "keep_daily = 7": "keep_daily = 0",
                                      "keep_weekly = 4": "keep_weekly = 0",
                                      "keep_monthly = 12": "keep_monthly = 0",
                                      "keep_yearly = 3": "keep_yearly = 0"})
    pruned = json.loads(site.ok("prune", "--json").stdout)
    assert [(p["repository"], len(p["kept"]), len(p["removed"])) for p in pruned] == [
        ("default", 1, 1), ("offsite", 1, 1)]
    repos = _by_repository(site)
    assert [len(repos["default"]), len(repos["offsite"])] == [1, 1]
    assert repos["offsite"][0]["reason"] == "nightly"

    drilled = site.run("drill", "--repository", "offsite", "--age-identity",
                       str(identity_file), "--json")
    assert drilled.returncode == 0, drilled.stdout + drilled.stderr
    report = json.loads(drilled.stdout)[0]
    assert report["snapshot_id"].startswith(repos["offsite"][0]["short_id"])
    checks = {c["name"]: c["result"] for c in report["checks"]}
    assert checks.pop("views, triggers, routines") == "skipped"  # the sample has none
    assert checks["credentials decrypt"] == "ok" and set(checks.values()) == {"ok"}

    status = _status(site)
    assert status["state"] == "ok", status
    offsite = status["repositories"][1]
    assert offsite["name"] == "offsite" and offsite["snapshots"] == 1
    assert offsite["last_drill_ok"] is True and offsite["escrowed"] is True
    assert offsite["last_copy"]["ok"] is True
    assert status["repositories"][0]["last_drill"] is None  # the drill proved the copy
    assert OFFSITE_PASSWORD not in site.run("status").stdout
    bad = site.run("drill", "--repository", "elsewhere")
    assert bad.returncode == 2 and "no repository named 'elsewhere'" in bad.stderr
    bad = site.run("copy", "--to", "default")
    assert bad.returncode == 2 and "own repository" in bad.stderr


def test_wrong_s3_credentials_keep_the_backup(
        sample: SampleSite, mariadb_server: PrivateServer, s3_server: S3Server,
        tmp_path: Path) -> None:
    site = _site(sample, mariadb_server, tmp_path, s3_server, secret_key="wrong-secret")
    done = site.run("backup")
    assert done.returncode == 0, done.stderr
    assert "the copy of site 'itflow' to 'offsite' failed (the backup itself is good" in (
        done.stderr)
    assert list(_by_repository(site)) == ["default"]
    status = _status(site)
    assert status["ok"] is True
    assert any("the last copy to 'offsite' failed" in w and "cannot open restic repository" in w
               for w in status["warnings"]), status["warnings"]
    assert "wrong-secret" not in json.dumps(status)
    copied = site.run("copy")
    assert copied.returncode == 1 and "cannot open restic repository" in copied.stdout


def test_s3_down_then_the_next_run_copies(
        sample: SampleSite, mariadb_server: PrivateServer, tmp_path: Path) -> None:
    with seaweedfs(tmp_path / "weed") as s3:
        site = _site(sample, mariadb_server, tmp_path, s3)
        site.ok("backup")
        os.kill(s3.pid, signal.SIGKILL)  # S3 goes down
        deadline = time.monotonic() + 10
        while alive(s3.pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        ports = s3.ports
    done = site.run("backup", "--reason", "nightly")
    assert done.returncode == 0, done.stderr
    assert "the copy of site 'itflow' to 'offsite' failed" in done.stderr
    assert len(_by_repository(site)["default"]) == 2
    status = _status(site)
    assert status["ok"] is True
    assert any("copy repository 'offsite'" in w for w in status["warnings"])
    copied = site.run("copy")
    assert copied.returncode == 1 and "(the local backups are untouched" in copied.stdout
    with seaweedfs(tmp_path / "weed", ports) as back:
        again = site.run("copy", "--json")
        assert again.returncode == 0, again.stdout + again.stderr
        assert json.loads(again.stdout)[0]["copied"] == 1
        repos = _by_repository(site)
        assert [len(repos["default"]), len(repos["offsite"])] == [2, 2]
        assert len(_status(site)["warnings"]) == 1  # only "never drilled" is left
        os.kill(back.pid, signal.SIGKILL)  # its data is not needed: no graceful stop


def _restic_copy(pid: int) -> int | None:
    """The running ``restic copy`` child of ``pid``, if any."""
    return next((c for c in children(pid) if "restic" in command_line(c)
                 and " copy" in command_line(c)), None)


def test_kill_9_during_a_copy_then_the_next_completes(
        sample: SampleSite, mariadb_server: PrivateServer, s3_server: S3Server,
        tmp_path: Path) -> None:
    site = _site(sample, mariadb_server, tmp_path, s3_server)
    edit_config(site.config, replace={'copy_to = ["offsite"]': "copy_to = []"})
    big = sample.path / "uploads" / "clients" / "big.bin"
    big.write_bytes(os.urandom(32 * 1024 * 1024))
    try:
        site.ok("backup")
        site.ok("backup", "--reason", "nightly")
    finally:
        big.unlink()
    edit_config(site.config, replace={"copy_to = []": 'copy_to = ["offsite"]'})
    copying = start(site.config, "copy")
    deadline = time.monotonic() + 60
    while (child := _restic_copy(copying.pid)) is None and time.monotonic() < deadline:
        assert copying.poll() is None, copying.communicate()
        time.sleep(0.005)
    assert child is not None
    time.sleep(0.3)
    os.kill(copying.pid, signal.SIGKILL)
    copying.wait()
    deadline = time.monotonic() + 10
    while (Path("/proc") / str(child)).exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not (Path("/proc") / str(child)).exists(), "restic outlived flowsafe"
    before = len(_by_repository(site).get("offsite", []))
    assert before < 2, "the copy finished before the kill: make the data bigger"
    done = site.run("copy", "--json")
    assert done.returncode == 0, done.stdout + done.stderr
    assert json.loads(done.stdout)[0]["copied"] == 2 - before
    repos = _by_repository(site)
    assert sorted(r["time"] for r in repos["offsite"]) == sorted(
        r["time"] for r in repos["default"])  # each backup once: no duplicates
    assert json.loads(site.ok("copy", "--json").stdout)[0]["copied"] == 0
