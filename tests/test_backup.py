"""End to end through the CLI: init, backup, snapshots, prune, status, and their faults.

Real private MariaDB, real sample site, real restic repositories; no mocks.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from flowsafe.lock import site_lock
from flowsafe.mariadb.connection import connect
from flowsafe.mariadb.instance import PrivateServer
from flowsafe.sample import SampleSite, build_site
from tests.cli import alive, flowsafe, start, wait_for_child, watch_processes
from tests.s3 import S3Server


@pytest.fixture(scope="module")
def sample(mariadb_server: PrivateServer, tmp_path_factory: pytest.TempPathFactory) -> SampleSite:
    root = tmp_path_factory.mktemp("www")
    return build_site(root / "itflow", mariadb_server.target(), database="itflow_e2e", seed=7)


@pytest.fixture
def config(sample: SampleSite, mariadb_server: PrivateServer, tmp_path: Path) -> Path:
    """A fresh config + repository for the sample site (flowsafe init through the CLI)."""
    path = tmp_path / "etc" / "flowsafe.toml"
    done = flowsafe(
        path,
        "init",
        "--site",
        str(sample.path),
        "--name",
        "itflow",
        "--repo",
        str(tmp_path / "repo"),
        "--state-dir",
        str(tmp_path / "state"),
        "--db-socket",
        mariadb_server.socket,
    )
    assert done.returncode == 0, done.stderr
    return path


def _sql(server: PrivateServer, database: str, statement: str) -> None:
    with connect(server.target(database)) as conn, conn.cursor() as cur:
        cur.execute(statement)


def _snapshots(config: Path) -> list[dict[str, object]]:
    done = flowsafe(config, "snapshots", "--json")
    assert done.returncode == 0, done.stderr
    rows: list[dict[str, object]] = json.loads(done.stdout)
    return rows


def _restic(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    repo = config.parent.parent / "repo"
    env = {
        **os.environ,
        "RESTIC_PASSWORD_FILE": str(config.parent / "default.password"),
        "RESTIC_REPOSITORY": str(repo),
    }
    return subprocess.run(["restic", *args], capture_output=True, text=True, env=env, check=True)


# --- init -------------------------------------------------------------------------------


def test_init_writes_private_config_and_password_once(
    config: Path, sample: SampleSite, mariadb_server: PrivateServer
) -> None:
    assert config.stat().st_mode & 0o777 == 0o600
    password = config.parent / "default.password"
    assert password.stat().st_mode & 0o777 == 0o600
    again = flowsafe(
        config,
        "init",
        "--site",
        str(sample.path),
        "--name",
        "itflow",
        "--db-socket",
        mariadb_server.socket,
    )
    assert again.returncode == 0, again.stderr
    assert "Attached to the restic repository" in again.stdout
    assert "password is in" not in again.stdout


def test_init_bad_inputs(tmp_path: Path, sample: SampleSite, mariadb_server: PrivateServer) -> None:
    cfg = tmp_path / "f.toml"
    empty = tmp_path / "empty"
    empty.mkdir()
    done = flowsafe(cfg, "init", "--site", str(empty))
    assert done.returncode == 2
    assert "config.php not found" in done.stderr

    broken = tmp_path / "broken"
    shutil.copytree(sample.path, broken, ignore=shutil.ignore_patterns("uploads"))
    text = (broken / "config.php").read_text().splitlines()
    text.insert(3, "$dbpassword = 'unterminated;")
    (broken / "config.php").write_text("\n".join(text) + "\n")
    done = flowsafe(cfg, "init", "--site", str(broken), "--db-socket", mariadb_server.socket)
    assert done.returncode == 2
    assert re.search(r"line \d+", done.stderr), done.stderr

    wrong = tmp_path / "wrong"
    shutil.copytree(sample.path, wrong, ignore=shutil.ignore_patterns("uploads"))
    php = (wrong / "config.php").read_text()
    php = php.replace(f"$dbusername = '{sample.db_user}'", "$dbusername = 'nobody'")
    (wrong / "config.php").write_text(php)
    done = flowsafe(
        cfg,
        "init",
        "--site",
        str(wrong),
        "--db-socket",
        mariadb_server.socket,
        "--repo",
        str(tmp_path / "r"),
    )
    assert done.returncode == 2
    assert "user 'nobody'" in done.stderr and mariadb_server.socket in done.stderr
    assert sample.db_password not in done.stderr

    done = flowsafe(
        cfg,
        "init",
        "--site",
        str(sample.path),
        "--db-socket",
        mariadb_server.socket,
        "--repo",
        "s3:http://127.0.0.1:9/none",
    )
    assert done.returncode in (1, 2)
    assert "127.0.0.1:9" in done.stderr
    assert not cfg.exists()


def test_init_refuses_existing_repository_without_its_password(
    config: Path, sample: SampleSite, mariadb_server: PrivateServer, tmp_path: Path
) -> None:
    other = tmp_path / "other" / "f.toml"
    done = flowsafe(
        other,
        "init",
        "--site",
        str(sample.path),
        "--repo",
        str(tmp_path / "repo"),
        "--db-socket",
        mariadb_server.socket,
    )
    assert done.returncode == 2
    assert "already exists" in done.stderr and "--repo-password-file" in done.stderr
    assert not (other.parent / "default.password").exists()
    done = flowsafe(
        other,
        "init",
        "--site",
        str(sample.path),
        "--repo",
        str(tmp_path / "repo"),
        "--repo-password-file",
        str(config.parent / "default.password"),
        "--db-socket",
        mariadb_server.socket,
    )
    assert done.returncode == 0, done.stderr
    assert "Attached" in done.stdout


# --- backup -----------------------------------------------------------------------------


def test_backup_is_plain_restic_and_restores_without_flowsafe(
    config: Path, sample: SampleSite, mariadb_server: PrivateServer, tmp_path: Path
) -> None:
    done = flowsafe(config, "backup", "--reason", "nightly")
    assert done.returncode == 0, done.stderr
    assert "ITFlow 26.08.2, schema 2.6.7" in done.stdout
    rows = _snapshots(config)
    assert len(rows) == 1
    assert rows[0]["reason"] == "nightly"
    assert rows[0]["app_version"] == sample.app_version
    assert rows[0]["schema_version"] == sample.schema_version

    out = tmp_path / "restored"
    _restic(config, "restore", "latest", "--tag", "flowsafe,site:itflow", "--target", str(out))
    staging = out / str(tmp_path / "state" / "staging" / "itflow").lstrip("/")
    tree = out / str(sample.path).lstrip("/")
    manifest = json.loads((staging / "manifest.json").read_text())
    assert manifest["site"] == "itflow" and manifest["itflow"]["schema_version"] == "2.6.7"
    assert (tree / "config.php").exists() and (tree / "uploads" / ".htaccess").exists()
    assert not (tree / "uploads" / "tmp").exists() and not (tree / "uploads" / "backups").exists()

    # Only cat + mariadb are needed to load the dump back (the README's command).
    _sql(mariadb_server, "", "CREATE DATABASE plain_restore")
    files = manifest["database"]["files"]
    assert [f["kind"] for f in files][:1] == ["header"]
    assert [f["kind"] for f in files][-2:] == ["routines", "footer"]
    sql = b"".join((staging / f["file"]).read_bytes() for f in files)
    subprocess.run(
        ["mariadb", "-uroot", f"--socket={mariadb_server.socket}", "--sandbox",
         "plain_restore"],
        input=sql,
        check=True,
    )
    with connect(mariadb_server.target("plain_restore")) as conn, conn.cursor() as cur:
        for table in [f for f in files if f["kind"] == "table"]:
            cur.execute(f"SELECT COUNT(*) FROM `{table['name']}`")
            row = cur.fetchone()
            assert row is not None and row[0] == table["rows"], table["name"]
    _sql(mariadb_server, "", "DROP DATABASE plain_restore")


def test_second_backup_adds_little(config: Path, sample: SampleSite) -> None:
    first = flowsafe(config, "backup", "--json")
    second = flowsafe(config, "backup", "--json")
    assert first.returncode == 0 and second.returncode == 0, first.stderr + second.stderr
    a, b = json.loads(first.stdout), json.loads(second.stdout)
    assert b["bytes_added"] < a["bytes_added"] / 10
    assert [r["id"] for r in _snapshots(config)] == [a["snapshot_id"], b["snapshot_id"]]


def test_concurrent_backup_refused(config: Path) -> None:
    with site_lock(config.parent.parent / "state", "itflow", "backup"):
        done = flowsafe(config, "backup")
    assert done.returncode == 1
    assert "another flowsafe backup of site 'itflow' is running" in done.stderr


def test_dump_failing_halfway_writes_no_snapshot(
    config: Path, sample: SampleSite, mariadb_server: PrivateServer
) -> None:
    _sql(mariadb_server, sample.database, "CREATE TABLE doomed (id INT PRIMARY KEY)")
    _sql(mariadb_server, sample.database, "CREATE VIEW doomed_view AS SELECT id FROM doomed")
    _sql(mariadb_server, sample.database, "DROP TABLE doomed")
    try:
        done = flowsafe(config, "backup")
    finally:
        _sql(mariadb_server, sample.database, "DROP VIEW doomed_view")
    assert done.returncode == 1
    assert "mariadb-dump" in done.stderr
    assert _snapshots(config) == []
    assert not (config.parent.parent / "state" / "staging" / "itflow").exists()
    status = flowsafe(config, "status", "--json")
    attempt = json.loads(status.stdout)[0]["last_attempt"]
    assert attempt["ok"] is False and "mariadb-dump" in attempt["error"]


def test_staging_disk_full(config: Path, tiny_disk: Path) -> None:
    text = config.read_text()
    state = re.search(r'^state_dir = "(.*)"$', text, re.M)
    assert state is not None
    config.write_text(text.replace(state.group(0), f'state_dir = "{tiny_disk}"'))
    done = flowsafe(config, "backup")
    assert done.returncode == 1
    assert "no space left on device" in done.stderr
    assert not (tiny_disk / "staging" / "itflow").exists()
    assert _snapshots(config) == []


def test_wrong_repository_password(config: Path) -> None:
    (config.parent / "default.password").write_text("not the password\n")
    done = flowsafe(config, "backup")
    assert done.returncode == 2
    assert "wrong password" in done.stderr


def test_missing_tools_say_what_to_install(config: Path, tmp_path: Path) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    done = flowsafe(config, "backup", env={"PATH": str(bin_dir)})
    assert done.returncode == 2
    assert "restic is not installed" in done.stderr and "apt-get install restic" in done.stderr

    restic = shutil.which("restic")
    assert restic
    (bin_dir / "restic").symlink_to(restic)
    done = flowsafe(config, "backup", env={"PATH": str(bin_dir)})
    assert done.returncode == 2
    assert "mariadb-dump is not installed" in done.stderr

    (bin_dir / "restic").unlink()
    (bin_dir / "restic").write_text("#!/bin/sh\necho 'restic 0.13.1 compiled with go1.18'\n")
    (bin_dir / "restic").chmod(0o755)
    done = flowsafe(config, "backup", env={"PATH": f"{bin_dir}:/usr/bin:/bin"})
    assert done.returncode == 2
    assert "0.14" in done.stderr


# --- kill -9, argv ----------------------------------------------------------------------


@pytest.fixture
def fat_table(sample: SampleSite, mariadb_server: PrivateServer) -> Iterator[None]:
    """Makes the dump take long enough to be caught mid-way."""
    _sql(
        mariadb_server,
        sample.database,
        "CREATE TABLE fat (id INT PRIMARY KEY, body TEXT) ENGINE=InnoDB",
    )
    _sql(
        mariadb_server,
        sample.database,
        "INSERT INTO fat SELECT seq, REPEAT(MD5(seq), 8) FROM seq_1_to_300000",
    )
    yield
    _sql(mariadb_server, sample.database, "DROP TABLE fat")


@pytest.mark.usefixtures("fat_table")
@pytest.mark.parametrize("victim", ["mariadb-dump", "restic"])
def test_kill_9_mid_backup(config: Path, victim: str) -> None:
    proc = start(config, "backup")
    child = wait_for_child(proc.pid, victim)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    deadline = time.monotonic() + 10
    while alive(child):
        assert time.monotonic() < deadline, f"{victim} outlived flowsafe"
        time.sleep(0.05)
    assert _snapshots(config) == []
    done = flowsafe(config, "backup")
    assert done.returncode == 0, done.stderr
    assert len(_snapshots(config)) == 1
    assert not (config.parent.parent / "state" / "staging" / "itflow").exists()
    prune = flowsafe(config, "prune")
    assert prune.returncode == 0, prune.stderr


@pytest.mark.usefixtures("fat_table")
def test_no_secret_in_any_argv_or_log(config: Path, sample: SampleSite) -> None:
    secrets = [sample.db_password, (config.parent / "default.password").read_text().strip()]
    with watch_processes() as seen:
        done = flowsafe(config, "--verbose", "backup")
    assert done.returncode == 0, done.stderr
    assert any("mariadb-dump" in p.argv for p in seen)
    assert any("restic" in p.argv and "backup" in p.argv for p in seen)
    for secret in secrets:
        assert not any(secret in p.argv or secret in p.environ for p in seen)
        assert secret not in done.stderr and secret not in done.stdout


# --- prune, status ----------------------------------------------------------------------


def test_prune_keeps_policy_and_foreign_snapshots(config: Path, tmp_path: Path) -> None:
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "f").write_text("not flowsafe's")
    _restic(config, "backup", str(foreign))
    for _ in range(3):
        assert flowsafe(config, "backup").returncode == 0
    config.write_text(
        config.read_text()
        .replace("keep_last = 3", "keep_last = 1")
        .replace("keep_daily = 7", "keep_daily = 0")
        .replace("keep_weekly = 4", "keep_weekly = 0")
        .replace("keep_monthly = 12", "keep_monthly = 0")
        .replace("keep_yearly = 3", "keep_yearly = 0")
    )
    dry = flowsafe(config, "prune", "--dry-run", "--json")
    assert dry.returncode == 0, dry.stderr
    assert len(json.loads(dry.stdout)[0]["removed"]) == 2
    assert len(_snapshots(config)) == 3
    done = flowsafe(config, "prune")
    assert done.returncode == 0, done.stderr
    assert len(_snapshots(config)) == 1
    listed = json.loads(_restic(config, "snapshots", "--json").stdout)
    assert any(str(foreign) in s["paths"] for s in listed)


def test_status_exit_codes(config: Path) -> None:
    none_yet = flowsafe(config, "status")
    assert none_yet.returncode == 1
    assert "no backup yet" in none_yet.stdout
    assert flowsafe(config, "backup").returncode == 0
    fresh = flowsafe(config, "status", "--json")
    assert fresh.returncode == 0, fresh.stdout + fresh.stderr
    row = json.loads(fresh.stdout)[0]
    assert row["ok"] is True and row["repository_bytes"] > 0 and row["last_attempt"]["ok"]
    config.write_text(
        config.read_text().replace("max_backup_age_hours = 26.0", "max_backup_age_hours = 1e-06")
    )
    stale = flowsafe(config, "status")
    assert stale.returncode == 1
    assert "old (limit" in stale.stdout


def test_unknown_site_and_missing_config(config: Path, tmp_path: Path) -> None:
    done = flowsafe(config, "backup", "--site", "nope")
    assert done.returncode == 2 and "no site named 'nope'" in done.stderr
    done = flowsafe(tmp_path / "none.toml", "status")
    assert done.returncode == 2 and "flowsafe init" in done.stderr


def test_demo_runs_and_cleans_up(tmp_path: Path) -> None:
    before = set(Path("/tmp").glob("flowsafe-demo-*"))
    done = flowsafe(tmp_path / "unused.toml", "demo")
    assert done.returncode == 0, done.stderr
    assert "flowsafe backup --reason nightly" in done.stdout
    assert done.stdout.count("manual") >= 2 and "nightly" in done.stdout
    assert "What to try next" in done.stdout
    assert set(Path("/tmp").glob("flowsafe-demo-*")) == before


def test_backup_to_s3(sample: SampleSite, mariadb_server: PrivateServer, s3_server: S3Server,
                      tmp_path: Path) -> None:
    cfg = tmp_path / "etc" / "flowsafe.toml"
    keys = {k: v.reveal() for k, v in s3_server.environment().items()}
    done = flowsafe(cfg, "init", "--site", str(sample.path), "--name", "itflow",
                    "--repo", s3_server.url("e2e-backup"), "--state-dir", str(tmp_path / "state"),
                    "--db-socket", mariadb_server.socket, env=keys)
    assert done.returncode == 0, done.stderr
    assert keys["AWS_SECRET_ACCESS_KEY"] in cfg.read_text()
    done = flowsafe(cfg, "backup", "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["bytes_added"] > 0
    assert len(_snapshots(cfg)) == 1
    status = flowsafe(cfg, "status")
    assert status.returncode == 0, status.stdout + status.stderr
