"""Restore, undo and restore-file end to end through the CLI, with every fault the issue
names: real private MariaDB, real restic repositories, real kills at each step."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from datetime import datetime
from pathlib import Path

import pymysql
import pytest

from flowsafe.lock import site_lock
from flowsafe.mariadb.connection import DbTarget, connect
from flowsafe.mariadb.instance import PrivateServer
from flowsafe.sample import build_site, nightly_change
from flowsafe.secret import Secret
from tests.cli import flowsafe
from tests.probes import Site, db_state, tree_state

# Every line of a restore's journal life, in order: before "swap-db" production is untouched;
# from "swap-done" on, the swap is complete and recovery finishes it rather than revert it.
STEPS = ["safety-backup", "journal-prepare", "db-load", "db-verify", "files-restore",
         "journal-swap", "swap-objects-dropped", "swap-db", "swap-objects", "swap-files-half",
         "swap-done", "journal-done"]


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
    assert re.search(r"time: safety backup [\d.]+ s, database [\d.]+ s \(reading [\d.]+ s, "
                     r"waiting [\d.]+ s, indexes [\d.]+ s, checks [\d.]+ s\), files [\d.]+ s, "
                     r"swap [\d.]+ s", done.stdout), done.stdout
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
    result = json.loads(site.ok("restore", "latest", "--db-only", "--yes",
                                "--no-safety-backup", "--json").stdout)
    assert result["done"] and result["plan"]["database"] and not result["plan"]["files"]
    assert set(result["phases"]) == {"database", "database: reading", "database: waiting",
                                     "database: indexes", "database: checks", "swap"}
    assert result["phases"]["database"] >= result["phases"]["database: reading"]
    assert site.snapshot_state() == (backed_up[0], changed[1])
    asks = site.run("restore", "latest", "--json")
    assert asks.returncode == 2 and "--json cannot ask" in asks.stderr
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
        site.restic("backup", "-q", str(other))
    listed = json.loads(site.restic("snapshots", "--json"))
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


def test_database_down_and_a_stock_vm_account(site: Site) -> None:
    """The site's own account may not create databases (as on a stock ITFlow VM): the
    restore works as root over the socket, and says nothing is needed."""
    text = site.config.read_text()
    site.config.write_text(text.replace(site.server.socket, str(site.tmp / "nope.sock")))
    down = site.run("restore", "latest", "--yes")
    assert down.returncode == 1 and "cannot reach MariaDB" in down.stderr
    site.config.write_text(text.replace('user = "root"\n', ""))
    _mutate(site)
    site.ok("restore", "latest", "--yes", "--no-safety-backup", "--db-only")
    assert site.leftovers() == []
    site.config.write_text(text.replace('user = "root"\n', "").replace(
        "[sites.\"itflow\"]", f"[sites.\"itflow\".admin]\nuser = \"{site.sample.db_user}\"\n"
        f"password_file = \"{site.tmp / 'db.pw'}\"\n\n[sites.\"itflow\"]", 1))
    (site.tmp / "db.pw").write_text(site.sample.db_password + "\n")
    denied = site.run("restore", "latest", "--yes", "--dry-run")
    assert denied.returncode == 2, denied.stderr
    assert "may not create databases and accounts" in denied.stderr
    assert "[sites.<name>.admin]" in denied.stderr


def _damage_clients(copy: Path) -> None:
    table = copy / "db" / "tables" / "clients.sql"
    table.write_bytes(table.read_bytes().replace(b"INSERT INTO", b"INSERT  INTO", 1))


def test_damaged_or_unsigned_snapshots_are_refused_before_the_swap(site: Site) -> None:
    tags = "flowsafe,site:itflow,reason:nightly"
    original = site.snapshots()[0]["id"]
    signed = site.rewrite_snapshot(original, _damage_clients, tags, keep_signature=True)
    unsigned = site.rewrite_snapshot(original, _damage_clients, tags, keep_signature=False)
    _mutate(site)
    before = site.snapshot_state()
    done = site.run("restore", signed, "--yes", "--no-safety-backup")
    assert done.returncode == 3, done.stderr
    assert "'clients': chunk" in done.stderr and "differs from the manifest" in done.stderr
    assert "nothing was swapped: the live site is as it was" in done.stderr
    assert site.snapshot_state() == before
    assert site.leftovers() == []

    done = site.run("restore", unsigned, "--yes", "--no-safety-backup")
    assert done.returncode == 3 and "is not signed" in done.stderr
    assert "--trust-unsigned" in done.stderr
    done = site.run("restore", unsigned, "--yes", "--no-safety-backup", "--trust-unsigned")
    assert done.returncode == 3 and "'clients': chunk" in done.stderr
    assert site.snapshot_state() == before

    def forged(copy: Path) -> None:  # a manifest that lies needs a new signature: none fits
        manifest = copy / "manifest.json"
        manifest.write_text(manifest.read_text().replace('"reason": "nightly"',
                                                         '"reason": "manual"'))

    lying = site.rewrite_snapshot(original, forged, tags, keep_signature=True)
    done = site.run("restore", lying, "--yes", "--no-safety-backup")
    assert done.returncode == 3 and "does not match its signature" in done.stderr
    assert site.snapshot_state() == before

    def missing(copy: Path) -> None:
        (copy / "db" / "tables" / "clients.sql").unlink()

    gone = site.rewrite_snapshot(original, missing, tags, keep_signature=True)
    done = site.run("restore", gone, "--yes", "--no-safety-backup")
    assert done.returncode == 3 and "clients.sql' is missing" in done.stderr
    assert site.snapshot_state() == before
    assert site.leftovers() == []


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
    assert re.search(r"restoring the files needs \d+ MiB on .* free space first; nothing was "
                     "changed", done.stderr)
    assert (tree_state(moved), db_state(site.target)) == before
    assert [p.name for p in tiny_disk.iterdir()] == ["itflow"]


# --- kill -9 at every step -----------------------------------------------------------------


def test_kill_at_each_step_leaves_production_whole(site: Site) -> None:
    """kill -9 at every step of a restore's journal life, one after another on one site:
    the next command puts production back as it was, or finishes a completed swap."""
    backed_up = site.snapshot_state()
    snap = site.snapshots()[0]["id"]
    for night, step in enumerate(STEPS, 1):
        nightly_change(site.sample, site.server.target(), day=night)
        (site.sample.path / "custom" / "added.txt").write_text(f"local change {night}\n")
        before = site.snapshot_state()
        killed = site.run("restore", snap, "--yes", env={"FLOWSAFE_FAULT": step})
        assert killed.returncode == -9, (step, killed.stderr)
        if STEPS.index(step) < STEPS.index("swap-objects-dropped"):
            assert site.snapshot_state() == before, f"production changed before the swap ({step})"
        site.ok("restore", snap, "--dry-run")  # the next run repairs
        if STEPS.index(step) < STEPS.index("swap-done"):
            assert site.snapshot_state() == before, f"an incomplete swap stays undone ({step})"
        else:
            assert site.snapshot_state()[0] == backed_up[0], f"a completed swap is kept ({step})"
            assert "rollback state" in site.ok("status").stdout
        assert site.leftovers() == [], step
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
    key = site.tmp / "signing.key"
    shutil.copy(site.config.parent / "itflow.signing-key", key)
    unsigned = flowsafe(new_config, "restore", "latest", "--site", "itflow", "--to-path",
                        str(dest), "--to-db", "itflow_moved", "--db-socket", site.server.socket,
                        "--yes")
    assert unsigned.returncode == 3 and "which this machine does not have" in unsigned.stderr
    done = flowsafe(new_config, "restore", "latest", "--site", "itflow", "--to-path", str(dest),
                    "--to-db", "itflow_moved", "--db-socket", site.server.socket, "--yes",
                    "--signing-key-file", str(key))
    assert done.returncode == 0, done.stderr
    assert db_state(site.server.target("itflow_moved")) == db_state(site.target)
    php = (dest / "config.php").read_text()
    assert "$database = 'itflow_moved';" in php and "$dbusername = 'itflow';" in php
    password = re.search(r"\$dbpassword = '([^']+)';", php)
    assert password is not None and len(password.group(1)) == 32
    assert "$installation_id" in php
    assert (dest / "uploads" / ".htaccess").exists()
    app = DbTarget("itflow_moved", socket=site.server.socket, user="itflow",
                   password=Secret(password.group(1)))
    with connect(app) as conn, conn.cursor() as cur:  # the app account reaches its database
        cur.execute("SELECT COUNT(*) FROM clients")
        with pytest.raises(pymysql.err.MySQLError):
            cur.execute("CREATE DATABASE elsewhere")

    again = flowsafe(new_config, "restore", "latest", "--site", "itflow", "--to-path",
                     str(site.tmp / "other"), "--to-db", "itflow_moved", "--db-socket",
                     site.server.socket, "--yes", "--signing-key-file", str(key))
    assert again.returncode == 2 and "is not empty" in again.stderr
    assert "--replace-existing" in again.stderr
    dry = flowsafe(new_config, "restore", "latest", "--site", "itflow", "--to-path",
                   str(site.tmp / "dry"), "--to-db", "itflow_dry", "--db-socket",
                   site.server.socket, "--dry-run", "--signing-key-file", str(key))
    assert dry.returncode == 0 and "Restore snapshot" in dry.stdout, dry.stderr
    assert not (site.tmp / "dry").exists()
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


# --- undo and the journal ------------------------------------------------------------------


def test_undo_refuses_when_a_kept_part_is_gone(site: Site) -> None:
    _mutate(site)
    site.ok("restore", "latest", "--yes", "--no-safety-backup")
    restored = site.snapshot_state()
    kept = site.journal()["rollback"]
    with connect(site.server.target()) as conn, conn.cursor() as cur:
        cur.execute(f"DROP DATABASE `{kept['db']['sink']}`")  # dropped by hand
    done = site.run("undo", "--yes")
    assert done.returncode == 1, done.stderr
    assert "not as the restore journal says" in done.stderr and "undo --forget" in done.stderr
    assert site.snapshot_state() == restored, "undo moved something"
    site.ok("backup")
    assert len(site.snapshot_state()[0]) == len(restored[0])
    site.ok("undo", "--forget", "--yes")
    assert site.journal() == {"current": None, "rollback": None}

    site.ok("restore", "latest", "--yes", "--no-safety-backup")
    restored = site.snapshot_state()
    shutil.rmtree(site.journal()["rollback"]["files"]["sink"])
    done = site.run("undo", "--yes")
    assert done.returncode == 1 and "site folders are not as the restore journal says" in \
        done.stderr
    assert site.snapshot_state() == restored
    site.ok("backup")


def test_redo_names_the_restore_time(site: Site) -> None:
    _mutate(site)
    site.ok("restore", "latest", "--yes", "--no-safety-backup")
    restored_at = site.journal()["rollback"]["restored_at"]
    undone = site.ok("undo", "--yes").stdout
    redone = site.ok("undo", "--yes").stdout
    shown = datetime.fromisoformat(restored_at).astimezone().strftime("%Y-%m-%d %H:%M:%S")
    assert shown in undone and shown in redone
    assert "Redid the restore" in redone


def test_in_place_restore_brings_back_every_object_kind(site: Site) -> None:
    """Views, procedures, functions, events, triggers and sequences: all come back in place,
    run as the site's own account, and undo puts the replaced ones back."""
    definer = f"{site.sample.db_user}@localhost"
    objects = [
        "CREATE VIEW open_tickets AS SELECT ticket_id FROM tickets",
        "CREATE PROCEDURE client_count(OUT n INT) SELECT COUNT(*) INTO n FROM clients",
        "CREATE FUNCTION twice(x INT) RETURNS INT DETERMINISTIC RETURN 2 * x",
        "CREATE EVENT nightly_cleanup ON SCHEDULE EVERY 1 DAY STARTS '2031-01-01' DO "
        "DELETE FROM logs WHERE 0",
        "CREATE TRIGGER client_touch BEFORE UPDATE ON clients FOR EACH ROW "
        "SET NEW.client_name = NEW.client_name",
        "CREATE SEQUENCE invoice_numbers START WITH 1000",
    ]
    with connect(site.target) as conn, conn.cursor() as cur:
        for statement in objects:
            cur.execute(statement)
    site.ok("backup")
    backed_up = site.snapshot_state()
    with connect(site.target) as conn, conn.cursor() as cur:
        for drop in ("VIEW open_tickets", "PROCEDURE client_count", "FUNCTION twice",
                     "EVENT nightly_cleanup", "TRIGGER client_touch", "SEQUENCE invoice_numbers"):
            cur.execute(f"DROP {drop}")
        cur.execute("CREATE VIEW stray AS SELECT 1 AS one")
    _mutate(site)
    plan = site.ok("restore", "latest", "--dry-run").stdout
    for phrase in ("1 view (open_tickets)", "1 procedure (client_count)", "1 function (twice)",
                   "1 event (nightly_cleanup)", "1 trigger (client_touch)",
                   "1 sequence (invoice_numbers)", "and its 1 view (stray)"):
        assert phrase in plan, phrase
    site.ok("restore", "latest", "--yes", "--no-safety-backup")
    assert site.snapshot_state()[0] == backed_up[0]
    with connect(site.target) as conn, conn.cursor() as cur:
        cur.execute("SELECT COUNT(*) FROM open_tickets")
        cur.execute("CALL client_count(@n)")
        cur.execute("SELECT twice(21), NEXTVAL(invoice_numbers)")
        assert cur.fetchone() == (42, 1000)
        for query in ("SELECT DEFINER FROM information_schema.VIEWS WHERE TABLE_SCHEMA = %s",
                      "SELECT DEFINER FROM information_schema.ROUTINES WHERE ROUTINE_SCHEMA=%s",
                      "SELECT DEFINER FROM information_schema.TRIGGERS WHERE "
                      "TRIGGER_SCHEMA = %s",
                      "SELECT DEFINER FROM information_schema.EVENTS WHERE EVENT_SCHEMA = %s"):
            cur.execute(query, (site.target.database,))
            assert {row[0] for row in cur.fetchall()} == {definer}, query
        cur.execute("SHOW FULL TABLES WHERE Table_type = 'VIEW'")
        assert [row[0] for row in cur.fetchall()] == ["open_tickets"]
    site.ok("undo", "--yes")
    with connect(site.target) as conn, conn.cursor() as cur:
        cur.execute("SHOW FULL TABLES WHERE Table_type = 'VIEW'")
        assert [row[0] for row in cur.fetchall()] == ["stray"]
        cur.execute("SELECT COUNT(*) FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = %s",
                    (site.target.database,))
        assert cur.fetchone() == (0,)


def test_latest_skips_safety_snapshots_and_prune_keeps_them_apart(site: Site) -> None:
    nightly = site.snapshots()[0]
    _mutate(site)
    done = site.ok("restore", "latest", "--yes")  # takes a pre-restore snapshot
    listed = site.snapshots()
    assert [s["reason"] for s in listed] == ["nightly", "pre-restore"]
    plan = site.ok("restore", "latest", "--dry-run").stdout
    assert f"from snapshot {nightly['id'][:8]} taken" in plan
    safety = site.ok("restore", "latest", "--include-safety", "--dry-run").stdout
    assert "pre-restore safety snapshot" in safety
    del done
    site.ok("backup", "--reason", "nightly")
    text = site.config.read_text()
    for rule, count in (("keep_last", 1), ("keep_daily", 0), ("keep_weekly", 0),
                        ("keep_monthly", 0), ("keep_yearly", 0)):
        text = re.sub(rf"{rule} = \d+", f"{rule} = {count}", text)
    site.config.write_text(text)
    dry = site.ok("prune", "--dry-run").stdout
    assert f"would remove {nightly['short_id']}" in dry and "nightly" in dry
    assert "pre-restore" not in dry  # its own rule: kept for keep_safety_days
    site.ok("prune")
    assert [s["reason"] for s in site.snapshots()] == ["pre-restore", "nightly"]


def test_restore_file_never_writes_through_a_planted_symlink(site: Site) -> None:
    shared = site.tmp / "shared"
    shared.mkdir(mode=0o777)
    shared.chmod(0o777)  # world-writable, not sticky: another user could swap paths
    done = site.run("restore-file", "latest", "config.php", "--to", str(shared / "x"))
    assert done.returncode == 2 and "writable by every user" in done.stderr
    sticky = site.tmp / "sticky"
    sticky.mkdir()
    sticky.chmod(0o1777)
    victim = site.tmp / "root-only.txt"
    victim.write_text("root's\n")
    victim.chmod(0o600)
    theirs = sticky / "theirs"
    theirs.symlink_to(site.tmp)
    os.lchown(theirs, 65534, 65534)  # a symlink another user made
    done = site.run("restore-file", "latest", "config.php", "--to", str(theirs))
    assert done.returncode == 2 and "symlink owned by another user" in done.stderr
    assert victim.read_text() == "root's\n"
    mine = sticky / "mine"
    done = site.ok("restore-file", "latest", "config.php", "--to", str(mine))
    assert (mine / "config.php").read_text() == (site.sample.path / "config.php").read_text()
    assert not any(".landing" in p.name for p in mine.iterdir())
