"""Restore, undo and restore-file end to end through the CLI, with every fault the issue
names: real private MariaDB, real restic repositories, real kills at each step."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from flowsafe.lock import site_lock
from flowsafe.mariadb.connection import DbTarget, connect
from flowsafe.mariadb.instance import PrivateServer
from flowsafe.sample import SampleSite, build_site, nightly_change
from tests.cli import SiteUnderTest, flowsafe

STEPS = ["safety-backup", "db-load", "db-verify", "files-restore", "swap-db",
         "swap-files-half", "swap-done"]


def db_state(target: DbTarget) -> dict[str, int]:
    """Table -> CHECKSUM TABLE, the content of a whole database."""
    with connect(target) as conn, conn.cursor() as cur:
        cur.execute("SHOW FULL TABLES WHERE Table_type = 'BASE TABLE'")
        tables = sorted(str(row[0]) for row in cur.fetchall())
        state = {}
        for table in tables:
            cur.execute(f"CHECKSUM TABLE `{table}` EXTENDED")
            row = cur.fetchone()
            state[table] = int(row[1]) if row and row[1] is not None else -1
    return state


def tree_state(root: Path) -> dict[str, tuple[str, int, int]]:
    """Relative path -> (sha256, mode, uid) for every file below ``root``."""
    state = {}
    for path in sorted(root.rglob("*")):
        info = path.lstat()
        digest = hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else "dir"
        state[str(path.relative_to(root))] = (digest, info.st_mode, info.st_uid)
    return state


class Site(SiteUnderTest):
    """A sample site with a config whose database user is root (restores need CREATE)."""

    def __init__(self, sample: SampleSite, server: PrivateServer, tmp: Path) -> None:
        super().__init__(sample, server, tmp)
        self.state = tmp / "state"

    def snapshot_state(self) -> tuple[dict[str, int], dict[str, tuple[str, int, int]]]:
        return db_state(self.target), tree_state(self.sample.path)

    def leftovers(self) -> list[str]:
        """Scratch databases and sibling folders that a restore may leave."""
        with connect(self.server.target()) as conn, conn.cursor() as cur:
            cur.execute("SHOW DATABASES")
            dbs = [str(r[0]) for r in cur.fetchall() if "__new_" in str(r[0])]
        dirs = [p.name for p in self.sample.path.parent.iterdir()
                if ".flowsafe-new" in p.name or p.name.endswith(".landing")]
        return dbs + dirs


@pytest.fixture
def site(mariadb_server: PrivateServer, tmp_path: Path) -> Site:
    sample = build_site(tmp_path / "www" / "itflow", mariadb_server.target(),
                        database=f"rs_{tmp_path.name[-12:].replace('-', '_')}", seed=11)
    made = Site(sample, mariadb_server, tmp_path)
    made.ok("init", "--site", str(sample.path), "--name", "itflow", "--repo",
            str(tmp_path / "repo"), "--state-dir", str(made.state), "--db-socket",
            mariadb_server.socket, "--db-user", "root")
    made.ok("backup", "--reason", "nightly")
    return made


def _mutate(site: Site) -> None:
    nightly_change(site.sample, site.server.target(), day=1)
    (site.sample.path / "custom" / "added.txt").write_text("local change\n")


# --- the happy path -------------------------------------------------------------------


def test_full_restore_undo_redo_purge(site: Site) -> None:
    backed_up = site.snapshot_state()
    (site.sample.path / "uploads" / "backups" / "itflow_native.zip").write_bytes(b"keep me")
    _mutate(site)
    changed = site.snapshot_state()
    assert changed != backed_up

    done = site.ok("restore", "latest", "--yes")
    assert "pre-restore backup" in done.stdout
    assert site.snapshot_state()[0] == backed_up[0]
    restored_tree = tree_state(site.sample.path)
    for path, entry in backed_up[1].items():
        assert restored_tree.get(path) == entry, path
    assert (site.sample.path / "uploads" / "backups" / "itflow_native.zip").read_bytes() == (
        b"keep me")
    assert not (site.sample.path / "custom" / "added.txt").exists()
    reasons = [s["reason"] for s in site.snapshots()]
    assert reasons == ["nightly", "pre-restore"]
    status = json.loads(site.ok("status", "--json").stdout)[0]
    assert status["rollback"]["bytes"] > 0 and status["rollback"]["database"]
    assert site.leftovers() == []

    site.ok("undo", "--yes")
    assert site.snapshot_state() == changed
    site.ok("undo", "--yes")
    assert site.snapshot_state()[0] == backed_up[0]
    site.ok("undo", "--purge", "--yes")
    status = json.loads(site.ok("status", "--json").stdout)[0]
    assert status["rollback"] is None
    assert [p for p in site.sample.path.parent.iterdir() if "flowsafe" in p.name] == []
    nothing = site.run("undo", "--yes")
    assert nothing.returncode == 2 and "nothing to undo" in nothing.stderr


def test_dry_run_changes_nothing(site: Site) -> None:
    _mutate(site)
    before = site.snapshot_state()
    done = site.ok("restore", "latest", "--dry-run")
    assert "Restore plan" in done.stdout and "pre-restore backup" in done.stdout
    assert site.snapshot_state() == before
    assert len(site.snapshots()) == 1


def test_confirmation_required_without_terminal(site: Site) -> None:
    done = site.run("restore", "latest")
    assert done.returncode == 2 and "pass --yes" in done.stderr


def test_db_only_and_files_only(site: Site) -> None:
    backed_up = site.snapshot_state()
    _mutate(site)
    changed = site.snapshot_state()
    site.ok("restore", "latest", "--db-only", "--yes", "--no-safety-backup")
    assert site.snapshot_state() == (backed_up[0], changed[1])
    site.ok("undo", "--yes")
    site.ok("restore", "latest", "--files-only", "--yes", "--no-safety-backup")
    db, tree = site.snapshot_state()
    assert db == changed[0]
    assert all(tree.get(p) == e for p, e in backed_up[1].items())
    both = site.run("restore", "latest", "--files-only", "--db-only", "--yes")
    assert both.returncode == 2 and "exclude each other" in both.stderr


# --- the schema guard ------------------------------------------------------------------


def _set_schema(site: Site, version: str) -> None:
    with connect(site.target) as conn, conn.cursor() as cur:
        cur.execute("UPDATE settings SET config_current_database_version = %s", (version,))


def test_schema_guard(site: Site) -> None:
    _set_schema(site, "2.7.0")
    site.ok("backup", "--reason", "newer")
    newer = site.snapshots()[-1]["id"]
    _set_schema(site, "2.5.1")
    site.ok("backup", "--reason", "older")
    older = site.snapshots()[-1]["id"]
    _set_schema(site, "2.6.7")

    refused = site.run("restore", newer, "--db-only", "--yes")
    assert refused.returncode == 2
    assert "newer than the live code expects (2.6.7)" in refused.stderr
    assert "full restore" in refused.stderr
    forced = site.ok("restore", newer, "--db-only", "--yes", "--force", "--no-safety-backup")
    assert "FORCED" in forced.stdout
    site.ok("undo", "--yes")

    warned = site.ok("restore", older, "--db-only", "--yes", "--no-safety-backup")
    assert "migrate it forward" in warned.stdout


# --- bad input ---------------------------------------------------------------------------


def _plain_restic(site: Site, *args: str) -> str:
    env = {**os.environ, "RESTIC_REPOSITORY": str(site.tmp / "repo"),
           "RESTIC_PASSWORD_FILE": str(site.config.parent / "default.password")}
    return subprocess.run(["restic", *args], env=env, capture_output=True, text=True,
                          check=True).stdout


def test_snapshot_references(site: Site) -> None:
    unknown = site.run("restore", "abcdef12", "--yes")
    assert unknown.returncode == 2 and "no snapshot 'abcdef12'" in unknown.stderr
    garbage = site.run("restore", "not-an-id", "--yes")
    assert garbage.returncode == 2 and "is not a snapshot id" in garbage.stderr

    other = site.tmp / "plain"
    other.mkdir()
    ids = {s["id"] for s in site.snapshots()}
    for n in range(17):
        (other / "f").write_text(str(n))
        _plain_restic(site, "backup", "-q", str(other))
    listed = json.loads(_plain_restic(site, "snapshots", "--json"))
    foreign = [s["id"] for s in listed if s["id"] not in ids]
    first: dict[str, list[str]] = {}
    for snap_id in sorted(foreign):
        first.setdefault(snap_id[0], []).append(snap_id)
    prefix = next(k for k, v in first.items() if len(v) > 1)
    ambiguous = site.run("restore", prefix, "--yes")
    assert ambiguous.returncode == 2 and "ambiguous" in ambiguous.stderr
    not_ours = site.run("restore", foreign[0], "--yes")
    assert not_ours.returncode == 2 and "not made by flowsafe" in not_ours.stderr


def test_snapshot_of_another_site(site: Site) -> None:
    site.ok("init", "--site", str(site.sample.path), "--name", "other", "--db-socket",
            site.server.socket, "--db-user", "root")
    site.ok("backup", "--site", "other")
    theirs = site.ok("snapshots", "--site", "other", "--json")
    snap = json.loads(theirs.stdout)[0]["id"]
    done = site.run("restore", snap, "--site", "itflow", "--yes")
    assert done.returncode == 2 and "belongs to site 'other'" in done.stderr


def test_database_down_and_missing_privilege(site: Site) -> None:
    text = site.config.read_text()
    site.config.write_text(text.replace(site.server.socket, str(site.tmp / "nope.sock")))
    down = site.run("restore", "latest", "--yes")
    assert down.returncode == 1 and "cannot reach MariaDB" in down.stderr
    site.config.write_text(text.replace('user = "root"\n', ""))
    denied = site.run("restore", "latest", "--yes", "--no-safety-backup")
    assert denied.returncode == 2
    assert "lacks the CREATE privilege" in denied.stderr and "root" in denied.stderr
    assert site.leftovers() == []


def test_damaged_table_file_aborts_before_swap(site: Site) -> None:
    snap = site.snapshots()[0]["id"]
    staging = site.state / "staging" / "itflow"
    _plain_restic(site, "restore", snap, "--target", str(site.tmp / "copy"),
                  "--include", str(staging))
    copy = site.tmp / "copy" / str(staging).lstrip("/")
    table = copy / "db" / "tables" / "clients.sql"
    table.write_bytes(table.read_bytes().replace(b"INSERT INTO", b"INSERT  INTO", 1))
    shutil.copytree(copy, staging)
    _plain_restic(site, "backup", "-q", "--tag", "flowsafe,site:itflow,reason:tampered",
                  str(staging), str(site.sample.path), "--exclude",
                  str(site.sample.path / "uploads" / "tmp"))
    shutil.rmtree(staging)
    _mutate(site)
    before = site.snapshot_state()
    done = site.run("restore", "latest", "--yes", "--no-safety-backup")
    assert done.returncode == 3
    assert "table 'clients'" in done.stderr and "digest" in done.stderr
    assert site.snapshot_state() == before
    assert site.leftovers() == []

    table.unlink()
    shutil.copytree(copy, staging)
    _plain_restic(site, "backup", "-q", "--tag", "flowsafe,site:itflow,reason:missing",
                  str(staging), str(site.sample.path))
    shutil.rmtree(staging)
    done = site.run("restore", "latest", "--yes", "--no-safety-backup")
    assert done.returncode == 3 and "table 'clients'" in done.stderr and "missing" in done.stderr
    assert site.snapshot_state() == before


def test_restore_refused_while_site_busy(site: Site) -> None:
    with site_lock(site.state, "itflow", "backup"):
        done = site.run("restore", "latest", "--yes")
    assert done.returncode == 1 and "another flowsafe backup" in done.stderr


def test_disk_full_while_restoring_files(site: Site, tiny_disk: Path) -> None:
    # The live site moves to a small filesystem with room for itself but not a second copy.
    subprocess.run(["umount", "-l", str(tiny_disk)], check=True)
    size = sum(p.stat().st_size for p in site.sample.path.rglob("*") if p.is_file())
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size + 2_000_000}", "tmpfs",
                    str(tiny_disk)], check=True)
    moved = tiny_disk / "itflow"
    shutil.copytree(site.sample.path, moved, symlinks=True)
    site.config.write_text(site.config.read_text().replace(f'"{site.sample.path}"',
                                                           f'"{moved}"'))
    before = tree_state(moved), db_state(site.target)
    done = site.run("restore", "latest", "--yes", "--no-safety-backup")
    assert done.returncode == 1
    assert "no space left" in done.stderr.lower()
    assert (tree_state(moved), db_state(site.target)) == before
    assert [p.name for p in tiny_disk.iterdir()] == ["itflow"]


# --- kill -9 at every step -----------------------------------------------------------------


@pytest.mark.parametrize("step", STEPS)
def test_kill_at_each_step_leaves_production_whole(site: Site, step: str) -> None:
    backed_up = site.snapshot_state()
    snap = site.snapshots()[0]["id"]
    _mutate(site)
    before = site.snapshot_state()
    killed = site.run("restore", snap, "--yes", env={"FLOWSAFE_FAULT": step})
    assert killed.returncode == -9, killed.stderr
    if STEPS.index(step) < STEPS.index("swap-db"):
        assert site.snapshot_state() == before, "production changed before the swap"
    site.ok("restore", snap, "--dry-run")  # the next run repairs
    assert site.snapshot_state() == before
    assert site.leftovers() == []
    site.ok("restore", snap, "--yes", "--no-safety-backup")
    assert site.snapshot_state()[0] == backed_up[0]


# --- elsewhere, new server, single files ---------------------------------------------------


def test_restore_elsewhere_from_a_new_server(site: Site) -> None:
    new_config = site.tmp / "new-server" / "flowsafe.toml"
    attach = flowsafe(new_config, "init", "--repo", str(site.tmp / "repo"),
                      "--repo-password-file", str(site.config.parent / "default.password"),
                      "--state-dir", str(site.tmp / "new-state"))
    assert attach.returncode == 0, attach.stderr
    assert "Attached" in attach.stdout
    dest = site.tmp / "new-www" / "itflow"
    done = flowsafe(new_config, "restore", "latest", "--site", "itflow", "--to-path", str(dest),
                    "--to-db", "itflow_moved", "--db-socket", site.server.socket, "--yes")
    assert done.returncode == 0, done.stderr
    assert db_state(site.server.target("itflow_moved")) == db_state(site.target)
    php = (dest / "config.php").read_text()
    assert "$database = 'itflow_moved';" in php and "$dbusername = 'root';" in php
    assert "$installation_id" in php
    assert (dest / "uploads" / ".htaccess").exists()

    again = flowsafe(new_config, "restore", "latest", "--site", "itflow", "--to-path",
                     str(site.tmp / "other"), "--to-db", "itflow_moved", "--db-socket",
                     site.server.socket, "--yes")
    assert again.returncode == 2 and "already has tables" in again.stderr
    over = site.run("restore", "latest", "--to-path", str(site.sample.path / "x"), "--to-db",
                    "fresh_db", "--db-socket", site.server.socket, "--yes")
    assert over.returncode == 2 and "overlaps the live site" in over.stderr
    with connect(site.server.target()) as conn, conn.cursor() as cur:
        cur.execute("DROP DATABASE itflow_moved")


def test_restore_file(site: Site) -> None:
    clients = sorted((site.sample.path / "uploads" / "clients").iterdir())
    wanted = clients[0]
    out = site.tmp / "out"
    done = site.ok("restore-file", "latest", f"uploads/clients/{wanted.name}", "--to", str(out))
    assert str(out / wanted.name) in done.stdout
    assert tree_state(out / wanted.name) == tree_state(wanted)
    missing = site.run("restore-file", "latest", "uploads/nothing-here", "--to", str(out))
    assert missing.returncode == 2 and "is not in snapshot" in missing.stderr
    inside = site.run("restore-file", "latest", "config.php", "--to",
                      str(site.sample.path / "uploads"))
    assert inside.returncode == 2 and "inside the live site" in inside.stderr
    twice = site.run("restore-file", "latest", f"uploads/clients/{wanted.name}", "--to",
                     str(out))
    assert twice.returncode == 2 and "already exists" in twice.stderr
