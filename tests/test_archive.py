"""ITFlow's own backup archives through the CLI: ``archive inspect`` on every form PHP writes
the way ITFlow does (and on damaged ones), ``archive export`` read back by pyzipper, by
PHP's ZipArchive and by ITFlow's restore logic into a real MariaDB."""

from __future__ import annotations

import hashlib
import io
import json
import re
import shutil
import stat
import subprocess
import sys
import time
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import pyzipper

from flowsafe.archive import version_txt
from flowsafe.archive.writer import Sealer, create_private
from flowsafe.mariadb.connection import connect
from flowsafe.mariadb.instance import PrivateServer
from flowsafe.sample import build_site
from flowsafe.sample.itflow_archive import FORMS, write_itflow_backup
from flowsafe.secret import Secret, write_private
from tests.cli import edit_config
from tests.probes import db_state
from tests.test_drill import Drilled, _tampered_snapshot

RESTORE_PHP = Path(__file__).parent / "php" / "itflow_restore.php"
ITFLOW_NAME = re.compile(r"itflow_[0-9]{8}-[0-9]{6}_full_[A-Za-z0-9_-]{32}\.zip")
FORM_IDS = {
    "full": "itflow-26.08-full", "database": "itflow-26.08-database",
    "master_key": "itflow-26.08-master-key", "plain": "itflow-25.05-plain-zip",
    "sql2025": "itflow-2025-sql", "legacy": "itflow-legacy-sql",
}


class Archived(Drilled):
    """A backed-up sample site, the ITFlow backups PHP wrote of it, and its backup key."""

    files: dict[str, Path]
    backup_key: str
    key_file: Path
    snapshot: str

    def inspect(self, path: Path, *args: str) -> tuple[int, dict[str, Any] | None, str]:
        done = self.run("archive", "inspect", str(path), "--json", *args)
        report = json.loads(done.stdout) if done.stdout.strip() else None
        return done.returncode, report, done.stderr


@pytest.fixture(scope="module")
def site(mariadb_server: PrivateServer, tmp_path_factory: pytest.TempPathFactory) -> Archived:
    tmp = tmp_path_factory.mktemp("archive")
    sample = build_site(tmp / "www" / "itflow", mariadb_server.target(), database="ar_site",
                        seed=7)
    made = Archived(sample, mariadb_server, tmp)
    made.ok("init", "--site", str(sample.path), "--name", "itflow", "--repo", str(tmp / "repo"),
            "--state-dir", str(tmp / "state"), "--db-socket", mariadb_server.socket)
    made.files = {form: write_itflow_backup(sample.path, mariadb_server.socket, form,
                                            tmp / "itflow", Secret(sample.master_key))
                  for form in FORMS}
    found = re.search(r"\$config_backup_key = '([^']+)'",
                      (sample.path / "config.php").read_text())
    assert found, "PHP did not append a backup key to config.php as ITFlow does"
    made.backup_key = found.group(1)
    made.key_file = tmp / "backup.key"
    write_private(made.key_file, made.backup_key + "\n")
    made.ok("backup")
    made.snapshot = made.snapshots()[-1]["id"]
    return made


def reseal(site: Archived, source: Path, name: str,
           change: Callable[[dict[str, bytes]], None], *, checksums: bool = True) -> Path:
    """A copy of an AES archive with its entries changed by ``change`` (version.txt's
    checksums recomputed when ``checksums``), sealed with the same key."""
    with pyzipper.AESZipFile(source) as archive:
        archive.setpassword(site.backup_key.encode())
        entries = {info.filename: archive.read(info) for info in archive.infolist()}
    change(entries)
    if checksums:
        old = version_txt.parse(entries["version.txt"].decode())
        sums = [(n, hashlib.sha256(d).hexdigest()) for n, d in entries.items()
                if n != "version.txt"]
        entries["version.txt"] = version_txt.render(list(old.fields.items()), sums).encode()
    target = site.tmp / "damaged" / name
    target.parent.mkdir(exist_ok=True)
    with pyzipper.AESZipFile(target, "w", compression=pyzipper.ZIP_DEFLATED,
                             encryption=pyzipper.WZ_AES) as archive:
        archive.setpassword(site.backup_key.encode())
        for entry, data in entries.items():
            archive.writestr(entry, data)
    return target


def state_leftovers(site: Archived) -> list[Path]:
    temp = site.tmp / "state" / "tmp"
    return list(temp.iterdir()) if temp.is_dir() else []


# --- inspect: every form ITFlow wrote -------------------------------------------------


def test_inspect_names_and_verifies_every_form(site: Archived) -> None:
    for form, path in site.files.items():
        code, report, stderr = site.inspect(path, "--backup-key-file", str(site.key_file))
        assert report is not None and report["form"] == FORM_IDS[form], (form, stderr)
        if form == "legacy":
            assert code == 3 and not report["trusted"]
            assert "without escaping values" in stderr and len(stderr.strip().splitlines()) == 1
            continue
        assert code == 0 and report["ok"], (form, report["problems"])
        results = {e["name"]: e["result"] for e in report["entries"]}
        if form in ("full", "plain"):
            assert results == {"db.sql": "ok", "uploads.zip": "ok", "version.txt": "ok"}
            assert report["uploads"]["files"] > 10 and report["uploads"]["unsafe"] == []
        if form == "master_key":
            assert report["master_key_length"] == 16
        if form in ("full", "database"):
            assert report["version"]["Backup Type"] == form
            assert report["version"]["ITFlow Version"] == "Unknown"  # built by cron
            assert all(e["encrypted"] for e in report["entries"])
    done = site.run("archive", "inspect", str(site.files["master_key"]),
                    "--backup-key-file", str(site.key_file))
    assert done.returncode == 0 and site.sample.master_key not in done.stdout + done.stderr
    assert "VERIFIED" in done.stdout and "16-character key (not shown)" in done.stdout
    assert state_leftovers(site) == []


def test_key_comes_from_config_php(site: Archived) -> None:
    code, report, stderr = site.inspect(site.files["full"])
    assert code == 0 and report is not None and report["ok"], stderr


def test_wrong_key(site: Archived) -> None:
    wrong = site.tmp / "wrong.key"
    write_private(wrong, "x" * 32 + "\n")
    code, report, stderr = site.inspect(site.files["full"], "--backup-key-file", str(wrong))
    assert code == 2 and report is None
    assert "wrong backup key" in stderr and len(stderr.strip().splitlines()) == 1
    loose = site.tmp / "loose.key"
    loose.write_text(site.backup_key)
    loose.chmod(0o644)
    code, _, stderr = site.inspect(site.files["full"], "--backup-key-file", str(loose))
    assert code == 2 and "readable by other users" in stderr


def test_no_key_in_config_php(site: Archived) -> None:
    bare = site.tmp / "bare"
    bare.mkdir()
    text = (site.sample.path / "config.php").read_text()
    (bare / "config.php").write_text(re.sub(r"\$config_backup_key = '[^']+';", "", text))
    config = site.tmp / "bare.toml"
    config.write_text(site.config.read_text().replace(str(site.sample.path), str(bare)))
    done = subprocess.run([sys.executable, "-m", "flowsafe", "--config", str(config), "archive",
                           "inspect", str(site.files["database"])], capture_output=True,
                          text=True, check=False)
    assert done.returncode == 2 and "has no $config_backup_key" in done.stderr
    assert "--backup-key-file" in done.stderr
    plain = subprocess.run([sys.executable, "-m", "flowsafe", "--config", str(config), "archive",
                            "inspect", str(site.files["plain"])], capture_output=True, text=True,
                           check=False)
    assert plain.returncode == 0, plain.stderr  # a plain zip needs no key


# --- inspect: damaged and hostile archives --------------------------------------------


def test_truncated_and_corrupted(site: Archived) -> None:
    raw = site.files["full"].read_bytes()
    truncated = site.tmp / "truncated.zip"
    truncated.write_bytes(raw[: len(raw) // 2])
    code, report, stderr = site.inspect(truncated, "--backup-key-file", str(site.key_file))
    assert code == 3 and report is None and "damaged" in stderr, stderr
    corrupted = site.tmp / "corrupted.zip"
    middle = len(raw) // 2
    corrupted.write_bytes(raw[:middle] + bytes(b ^ 0xFF for b in raw[middle:middle + 64])
                          + raw[middle + 64:])
    code, report, stderr = site.inspect(corrupted, "--backup-key-file", str(site.key_file))
    assert code == 3 and report is not None and not report["ok"]
    damaged = [e for e in report["entries"] if e["result"] == "damaged"]
    assert [e["name"] for e in damaged] == ["uploads.zip"], report["entries"]
    assert "Bad HMAC" in damaged[0]["detail"] and len(stderr.strip().splitlines()) == 1
    assert state_leftovers(site) == []


def test_checksum_mismatch(site: Archived) -> None:
    def alter(entries: dict[str, bytes]) -> None:
        entries["db.sql"] += b"DROP TABLE users;\n"

    altered = reseal(site, site.files["full"], "altered.zip", alter, checksums=False)
    code, report, stderr = site.inspect(altered, "--backup-key-file", str(site.key_file))
    assert code == 3 and report is not None
    assert {e["name"]: e["result"] for e in report["entries"]}["db.sql"] == "mismatch"
    assert "SHA-256 of db.sql is not the one in version.txt" in stderr


def test_zip_slip_and_symlinks_in_uploads(site: Archived) -> None:
    inner = io.BytesIO()
    with zipfile.ZipFile(inner, "w") as uploads:
        uploads.writestr("clients/1/fine.txt", "fine")
        uploads.writestr("../../var/www/evil.php", "<?php system($_GET['c']);")
        uploads.writestr("/etc/cron.d/evil", "* * * * * root id")
        link = zipfile.ZipInfo("clients/1/passwd")
        link.external_attr = (stat.S_IFLNK | 0o777) << 16
        uploads.writestr(link, "/etc/passwd")

    def hostile(entries: dict[str, bytes]) -> None:
        entries["uploads.zip"] = inner.getvalue()

    archive = reseal(site, site.files["full"], "hostile.zip", hostile)
    code, report, stderr = site.inspect(archive, "--backup-key-file", str(site.key_file))
    assert code == 3 and report is not None
    unsafe = report["uploads"]["unsafe"]
    assert len(unsafe) == 3, unsafe
    assert any("'..'" in u for u in unsafe) and any("absolute" in u for u in unsafe)
    assert any("symbolic link" in u for u in unsafe)
    assert not (site.tmp / "var").exists()

    def outer(entries: dict[str, bytes]) -> None:
        entries["../db.sql"] = entries["db.sql"]

    slip = reseal(site, site.files["full"], "slip.zip", outer)
    code, report, stderr = site.inspect(slip, "--backup-key-file", str(site.key_file))
    assert code == 3 and report is None and "climbs out of its folder" in stderr


def test_unknown_forms(site: Archived) -> None:
    cases = {
        "random.bin": (b"\x00\x01 not a backup" * 100, "not a backup form ITFlow ever wrote"),
        "mariadb.sql": (b"/*M!999999\\- enable the sandbox mode */ \n-- MariaDB dump 10.19\n",
                        "mariadb-dump"),
    }
    other = io.BytesIO()
    with zipfile.ZipFile(other, "w") as archive:
        archive.writestr("photo.jpg", b"jpeg")
    cases["photos.zip"] = (other.getvalue(), "not an ITFlow backup")
    for name, (content, message) in cases.items():
        path = site.tmp / name
        path.write_bytes(content)
        code, report, stderr = site.inspect(path)
        assert code == 2 and report is None and message in stderr, (name, stderr)
    code, _, stderr = site.inspect(site.tmp / "absent.zip")
    assert code == 2 and "is not a file" in stderr


def test_memory_stays_flat(site: Archived) -> None:
    """A 256 MiB archive is inspected in well under 256 MiB of memory."""
    big = site.tmp / "big.zip"
    inner = site.tmp / "big-uploads.zip"
    block = hashlib.sha256(b"seed").digest() * (1 << 15)  # 1 MiB, incompressible enough
    with zipfile.ZipFile(inner, "w", zipfile.ZIP_STORED) as uploads, \
            uploads.open("clients/1/huge.bin", "w", force_zip64=True) as handle:
        for number in range(256):
            handle.write(block[number:] + block[:number])
    sums = []
    with create_private(big) as out, Sealer(out, Secret(site.backup_key)) as sealer:
        with sealer.entry("db.sql", 0, 0) as sql:
            sql.write(b"-- ITFlow database backup\n")
        with sealer.entry("uploads.zip", 0, inner.stat().st_size, compress=False) as up, \
                inner.open("rb") as source:
            while chunk := source.read(1 << 20):
                up.write(chunk)
        sums = list(sealer.digests)
        sealer.close(version_txt.render([("Backup Type", "full")], sums), 0)
    inner.unlink()
    probe = ("import resource, subprocess, sys; subprocess.run(sys.argv[1:], check=True, "
             "stdout=subprocess.DEVNULL); "
             "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)")
    done = subprocess.run([sys.executable, "-c", probe, sys.executable, "-m", "flowsafe",
                           "--config", str(site.config), "archive", "inspect", str(big),
                           "--backup-key-file", str(site.key_file)],
                          capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    peak_mib = int(done.stdout.strip()) / 1024
    assert peak_mib < 160, f"inspect of a 256 MiB archive peaked at {peak_mib:.0f} MiB"
    big.unlink()


# --- export ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def exported(site: Archived) -> Path:
    out = site.tmp / "exports"
    out.mkdir(mode=0o700)
    site.ok("archive", "export", site.snapshot, "--out", str(out))
    [path] = list(out.iterdir())
    return path


def test_export_is_an_itflow_archive(site: Archived, exported: Path) -> None:
    assert ITFLOW_NAME.fullmatch(exported.name), exported.name
    assert stat.S_IMODE(exported.stat().st_mode) == 0o600
    with pyzipper.AESZipFile(exported) as archive:
        infos = archive.infolist()
        assert [i.filename for i in infos] == ["db.sql", "uploads.zip", "version.txt"]
        assert all(i.flag_bits & 1 and i.wz_aes_strength == 3 for i in infos)  # AES-256
        archive.setpassword(site.backup_key.encode())
        version = version_txt.parse(archive.read("version.txt").decode())
        for name in ("db.sql", "uploads.zip"):
            sha = hashlib.sha256()
            with archive.open(name) as entry:
                while chunk := entry.read(1 << 20):
                    sha.update(chunk)
            assert version.checksum(name) == sha.hexdigest(), name
    assert version.backup_type == "full" and version.value("Database Version") == "2.6.7"
    code, report, stderr = site.inspect(exported)
    assert code == 0 and report is not None and report["form"] == "itflow-26.08-full", stderr


def _target_site(site: Archived) -> tuple[Path, str]:
    """An ITFlow install to restore into: config.php (with the backup key), uploads/ with a
    stale file and ITFlow's backup folder, and a database holding a stale table."""
    root = site.tmp / "target"
    (root / "uploads" / "backups").mkdir(parents=True)
    (root / "uploads" / "stale.txt").write_text("replaced by the restore")
    (root / "uploads" / "backups" / "keep.zip").write_bytes(b"ITFlow keeps its backups")
    database = "ar_target"
    with connect(site.server.target()) as conn, conn.cursor() as cur:
        cur.execute(f"CREATE DATABASE {database}")
        cur.execute(f"CREATE USER {database}@localhost IDENTIFIED BY 'target-pw'")
        cur.execute(f"GRANT ALL ON {database}.* TO {database}@localhost")
        cur.execute(f"CREATE TABLE {database}.stale (id int)")
    (root / "config.php").write_text(
        f"<?php\n$dbhost = 'localhost';\n$dbusername = '{database}';\n"
        f"$dbpassword = 'target-pw';\n$database = '{database}';\n"
        f"$config_backup_key = '{site.backup_key}';\n")
    return root, database


def _digests(root: Path, skip: tuple[str, ...]) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*"))
            if p.is_file() and not str(p.relative_to(root)).startswith(skip)}


def test_itflow_restore_reads_the_export(site: Archived, exported: Path) -> None:
    root, database = _target_site(site)
    done = subprocess.run(["php", "-d", f"mysqli.default_socket={site.server.socket}",
                           str(RESTORE_PHP), str(root), str(exported)],
                          capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    assert "checksums: 2 ok" in done.stdout and "database: imported" in done.stdout
    assert db_state(site.server.target(database)) == db_state(site.target)
    restored = _digests(root / "uploads", ("backups",))
    assert restored == _digests(site.sample.path / "uploads", ("backups", "tmp"))
    assert (root / "uploads" / "backups" / "keep.zip").exists()


def test_export_refuses_an_existing_file_and_a_loose_key(site: Archived) -> None:
    target = site.tmp / "taken.zip"
    target.write_bytes(b"precious")
    done = site.run("archive", "export", site.snapshot, "--out", str(target))
    assert done.returncode == 2 and "already exists" in done.stderr
    assert target.read_bytes() == b"precious"
    loose = site.tmp / "loose-export.key"
    loose.write_text("k" * 32)
    loose.chmod(0o644)
    done = site.run("archive", "export", site.snapshot, "--out", str(site.tmp / "new.zip"),
                    "--backup-key-file", str(loose))
    assert done.returncode == 2 and "readable by other users" in done.stderr
    assert not (site.tmp / "new.zip").exists()


def test_export_leaves_out_symlinks_as_itflow_does(site: Archived) -> None:
    link = site.sample.path / "uploads" / "clients" / "2" / "passwd"
    link.symlink_to("/etc/passwd")
    try:
        site.ok("backup")
    finally:
        link.unlink()
    out = site.tmp / "linked.zip"
    done = site.ok("archive", "export", "latest", "--out", str(out), "--json")
    assert json.loads(done.stdout)["skipped"] == ["clients/2/passwd"]
    with pyzipper.AESZipFile(out) as archive:
        archive.setpassword(site.backup_key.encode())
        with zipfile.ZipFile(io.BytesIO(archive.read("uploads.zip"))) as uploads:
            names = uploads.namelist()
    assert "clients/2/passwd" not in names and len(names) > 10


def test_export_refuses_a_name_itflow_cannot_restore(site: Archived) -> None:
    odd = site.sample.path / "uploads" / "clients" / "1" / "scan..pdf"
    odd.write_bytes(b"%PDF-1.4")
    try:
        site.ok("backup")
    finally:
        odd.unlink()
    out = site.tmp / "odd"
    out.mkdir(mode=0o700)
    done = site.run("archive", "export", "latest", "--out", str(out))
    assert done.returncode == 1 and "scan..pdf" in done.stderr, done.stderr
    assert list(out.iterdir()) == [] and state_leftovers(site) == []


def test_export_of_a_damaged_snapshot_writes_nothing(site: Archived) -> None:
    tampered = _tampered_snapshot(site)
    out = site.tmp / "tampered"
    out.mkdir(mode=0o700)
    done = site.run("archive", "export", tampered, "--out", str(out / "x.zip"))
    assert done.returncode == 3 and "'clients': chunk" in done.stderr, done.stderr
    assert list(out.iterdir()) == [] and state_leftovers(site) == []


def test_fixture_writer_rejects_unknown_forms(site: Archived) -> None:
    with pytest.raises(ValueError, match="unknown ITFlow backup form"):
        write_itflow_backup(site.sample.path, site.server.socket, "zip2019", site.tmp)


# --- import ----------------------------------------------------------------------------


def _snapshot_ids(site: Archived) -> list[str]:
    return [s["id"] for s in site.snapshots()]


def _import(site: Archived, *args: str) -> tuple[int, list[dict[str, Any]] | None, str]:
    done = site.run("archive", "import", *args, "--json")
    outcomes = json.loads(done.stdout) if done.stdout.strip() else None
    return done.returncode, outcomes, done.stderr


@pytest.fixture(scope="module")
def imported(site: Archived) -> dict[str, Any]:
    code, outcomes, stderr = _import(site, str(site.files["full"]))
    assert code == 0 and outcomes is not None, stderr
    [outcome] = outcomes
    assert outcome["action"] == "imported" and outcome["form"] == "itflow-26.08-full"
    return outcome


def test_import_is_an_ordinary_snapshot(site: Archived, imported: dict[str, Any]) -> None:
    listed = {s["id"]: s for s in site.snapshots()}[imported["snapshot_id"]]
    assert listed["reason"] == "itflow-archive" and listed["schema_version"] == "2.6.7"
    raw = json.loads(site.restic("snapshots", "--json", imported["snapshot_id"]))[0]
    sha = hashlib.sha256(site.files["full"].read_bytes()).hexdigest()
    assert f"archive:{sha}" in raw["tags"] and any(t.startswith("sig:") for t in raw["tags"])
    stamp = re.search(r"_(\d{8}-\d{6})_", site.files["full"].name)
    assert stamp is not None
    assert raw["time"].startswith(
        f"{stamp.group(1)[:4]}-{stamp.group(1)[4:6]}-{stamp.group(1)[6:8]}T")
    manifest = json.loads(site.restic("dump", imported["snapshot_id"],
                                      f"{site.tmp}/state/staging/itflow/manifest.json"))
    assert manifest["files"]["uploads_only"] and manifest["archive"]["name"] == \
        site.files["full"].name
    assert manifest["itflow"]["app_version"] is None  # "Unknown": built by cron
    assert imported["rows"] > 100 and imported["uploads_files"] > 10
    before = _snapshot_ids(site)
    code, outcomes, stderr = _import(site, str(site.files["full"]))
    assert code == 0 and outcomes is not None, stderr
    assert outcomes[0]["action"] == "already imported"
    assert outcomes[0]["snapshot_id"] == imported["snapshot_id"]
    assert _snapshot_ids(site) == before and state_leftovers(site) == []


def test_imported_snapshot_drills_and_exports(site: Archived, imported: dict[str, Any]) -> None:
    code, checks = site.drill(imported["snapshot_id"])
    assert code == 0, checks
    assert checks["login page"]["result"] == "skipped", checks["login page"]
    assert checks["table values"]["result"] == "ok"
    assert checks["uploads referenced"]["result"] == "ok"
    out = site.tmp / "exported-import.zip"
    site.ok("archive", "export", imported["snapshot_id"], "--out", str(out))
    code, report, stderr = site.inspect(out)
    assert code == 0 and report is not None and report["uploads"]["files"] == \
        imported["uploads_files"], stderr
    done = site.run("restore", imported["snapshot_id"], "--to-path", str(site.tmp / "else"),
                    "--to-db", "ar_else", "--yes")
    assert done.returncode == 2 and "imported ITFlow archive" in done.stderr


def test_restore_of_an_import_keeps_the_code(site: Archived, imported: dict[str, Any]) -> None:
    live = db_state(site.target)
    code_marker = site.sample.path / "custom-local.php"
    code_marker.write_text("<?php // local change, not in the archive\n")
    stale = site.sample.path / "uploads" / "clients" / "1" / "after-archive.txt"
    stale.write_text("uploaded after the archive")
    try:
        done = site.run("restore", imported["snapshot_id"], "--yes", "--no-safety-backup")
        assert done.returncode == 0, done.stderr
        assert "imported ITFlow archive" in done.stdout + done.stderr
        assert db_state(site.target) == live
        assert code_marker.exists() and not stale.exists()
        restored = _digests(site.sample.path / "uploads", ("backups", "tmp"))
        with zipfile.ZipFile(io.BytesIO(_entry(site, site.files["full"], "uploads.zip"))) as z:
            assert sorted(restored) == sorted(n for n in z.namelist() if not n.startswith("tmp/"))
        assert (site.sample.path / "uploads" / "backups").is_dir()  # carried over
        site.ok("undo", "--yes")
        assert stale.exists()
        site.ok("undo", "--purge", "--yes")  # the redo state goes too: the server is shared
    finally:
        code_marker.unlink()
        stale.unlink(missing_ok=True)


def _entry(site: Archived, archive: Path, name: str) -> bytes:
    with pyzipper.AESZipFile(archive) as opened:
        opened.setpassword(site.backup_key.encode())
        return bytes(opened.read(name))


def test_import_refuses_bad_archives(site: Archived, imported: dict[str, Any]) -> None:
    wrong = site.tmp / "wrong-import.key"
    write_private(wrong, "y" * 32 + "\n")
    raw = site.files["full"].read_bytes()
    truncated = site.tmp / "damaged" / "truncated-import.zip"
    truncated.parent.mkdir(exist_ok=True)
    truncated.write_bytes(raw[: len(raw) // 2])
    unknown = site.tmp / "damaged" / "unknown.bin"
    unknown.write_bytes(b"\x00 nothing ITFlow wrote" * 50)
    link_zip = io.BytesIO()
    with zipfile.ZipFile(link_zip, "w") as uploads:
        link = zipfile.ZipInfo("clients/1/passwd")
        link.external_attr = (stat.S_IFLNK | 0o777) << 16
        uploads.writestr(link, "/etc/passwd")
    slip_zip = io.BytesIO()
    with zipfile.ZipFile(slip_zip, "w") as uploads:
        uploads.writestr("../../etc/cron.d/evil", "* * * * * root id")

    def put(name: str, data: bytes) -> Callable[[dict[str, bytes]], None]:
        return lambda entries: entries.__setitem__(name, data)

    sql = _entry(site, site.files["full"], "db.sql")
    broken = sql + b"INSERT INTO `no_such_table` (`a`) VALUES ('1');\n"
    hostile = sql + b"GRANT ALL ON *.* TO 'x'@'%';\n"
    company = re.search(rb"INSERT INTO `companies` \(.*?\) VALUES \('1', '([^']+)'", sql)
    assert company is not None
    other = sql.replace(company.group(1), b"Another MSP AG")
    last = sql.count(b"\n") + 1  # the line appended to db.sql
    cases: list[tuple[list[str], int, str]] = [
        ([str(reseal(site, site.files["full"], "fresh.zip", lambda entries: None)),
          "--backup-key-file", str(wrong)], 2, "wrong backup key"),
        ([str(truncated)], 3, "damaged"),
        ([str(unknown)], 2, "not a backup form ITFlow ever wrote"),
        ([str(reseal(site, site.files["full"], "link.zip", put("uploads.zip",
                                                                link_zip.getvalue())))],
         3, "symbolic link"),
        ([str(reseal(site, site.files["full"], "slip-import.zip",
                     put("uploads.zip", slip_zip.getvalue())))], 3, "'..'"),
        ([str(reseal(site, site.files["full"], "mismatch.zip", put("db.sql", broken),
                     checksums=False))], 3, "SHA-256 of db.sql is not the one in version.txt"),
        ([str(reseal(site, site.files["full"], "broken.zip", put("db.sql", broken)))], 3,
         f"db.sql line {last} ('INSERT INTO `no_such_table`"),
        ([str(reseal(site, site.files["full"], "grant.zip", put("db.sql", hostile)))], 3,
         f"line {last}: 'GRANT ALL ON"),
        ([str(reseal(site, site.files["full"], "other.zip", put("db.sql", other)))], 2,
         "archive of another ITFlow: its company is 'Another MSP AG'"),
        ([str(site.files["database"])], 2, "import takes full archives"),
        ([str(site.files["legacy"])], 3, "without escaping values"),
    ]
    before = _snapshot_ids(site)
    for args, code, message in cases:
        done, outcomes, stderr = _import(site, *args)
        assert done == code and message in stderr, (args, stderr)
        assert len(stderr.strip().splitlines()) == 1 and outcomes is None, stderr
        assert "nothing was imported" in stderr or code == 2 or "damaged" in stderr, stderr
    assert _snapshot_ids(site) == before and state_leftovers(site) == []
    assert not (site.tmp / "state" / "staging" / "itflow").exists()
    forced, outcomes, stderr = _import(site, cases[8][0][0], "--force")
    assert forced == 0 and outcomes is not None and outcomes[0]["action"] == "imported", stderr


def test_no_key_in_config_php_for_import(site: Archived) -> None:
    fresh = reseal(site, site.files["full"], "fresh-nokey.zip", lambda entries: None)
    text = (site.sample.path / "config.php").read_text()
    (site.sample.path / "config.php").write_text(
        re.sub(r"\$config_backup_key = '[^']+';", "", text))
    try:
        code, _, stderr = _import(site, str(fresh))
    finally:
        (site.sample.path / "config.php").write_text(text)
    assert code == 2 and "has no $config_backup_key" in stderr


def test_import_master_key_into_escrow(site: Archived) -> None:
    path = str(site.files["master_key"])
    code, _, stderr = _import(site, path)
    assert code == 2 and "--age-recipient" in stderr and "nothing was escrowed" in stderr
    passphrase = site.tmp / "escrow.pass"
    write_private(passphrase, "correct horse battery staple\n")
    code, outcomes, stderr = _import(site, path, "--passphrase-file", str(passphrase))
    assert code == 0 and outcomes is not None and outcomes[0]["action"] == "escrowed", stderr
    records = json.loads(site.restic("snapshots", "--json", "--tag", "flowsafe-key"))
    assert len(records) == 1
    landing = site.tmp / "escrow-record"
    site.restic("restore", records[0]["id"], "--target", str(landing))
    sealed = (landing / "flowsafe-master-key-itflow.age").read_bytes()
    assert sealed.startswith(b"age-encryption.org/v1")
    assert site.sample.master_key.encode() not in sealed  # sealed, never in clear
    code, outcomes, stderr = _import(site, path, "--passphrase-file", str(passphrase))
    assert code == 0 and outcomes is not None and outcomes[0]["action"] == "already escrowed"
    opened = site.run("key", "verify", "--escrow-passphrase-file", str(passphrase), "--json")
    assert opened.returncode == 0, opened.stderr


def test_backup_imports_new_archives(site: Archived, imported: dict[str, Any]) -> None:
    folder = site.sample.path / "uploads" / "backups"
    new = write_itflow_backup(site.sample.path, site.server.socket, "full", folder)
    text = site.config.read_text()
    edit_config(site.config, replace={"import_itflow_archives = false":
                                      "import_itflow_archives = true"})
    try:
        done = site.ok("backup", "--json")
        result = json.loads(done.stdout)
        assert [o["action"] for o in result["imported"]] == ["imported"], result["imported"]
        assert new.exists()  # left where ITFlow put it
        again = json.loads(site.ok("backup", "--json").stdout)
        assert again["imported"] == []
    finally:
        site.config.write_text(text)
        new.unlink()


def test_import_memory_stays_flat(site: Archived) -> None:
    """An archive with a 200 MiB incompressible upload is imported in well under 200 MiB."""
    big = site.tmp / "big-import.zip"
    inner = site.tmp / "big-import-uploads.zip"
    with zipfile.ZipFile(inner, "w", zipfile.ZIP_STORED) as uploads, \
            uploads.open("clients/1/huge.bin", "w", force_zip64=True) as handle:
        for number in range(200):
            handle.write(hashlib.sha256(str(number).encode()).digest() * (1 << 15))
    with create_private(big) as out, Sealer(out, Secret(site.backup_key)) as sealer:
        with sealer.entry("db.sql", 0, 0) as sql:
            sql.write(_entry(site, site.files["full"], "db.sql"))
        with sealer.entry("uploads.zip", 0, inner.stat().st_size, compress=False) as up, \
                inner.open("rb") as source:
            while chunk := source.read(1 << 20):
                up.write(chunk)
        sealer.close(version_txt.render([("Backup Type", "full")], list(sealer.digests)), 0)
    inner.unlink()
    child = subprocess.Popen([sys.executable, "-m", "flowsafe", "--config", str(site.config),
                              "archive", "import", str(big), "--json"],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    peak = 0
    status = Path(f"/proc/{child.pid}/status")
    while child.poll() is None:
        try:
            found = re.search(r"VmHWM:\s+(\d+) kB", status.read_text())
        except OSError:
            break
        peak = max(peak, int(found.group(1)) if found else 0)
        time.sleep(0.05)
    out_text, err_text = child.communicate(timeout=240)
    big.unlink()
    assert child.returncode == 0, err_text
    assert json.loads(out_text)[0]["uploads_bytes"] >= 200 << 20
    assert 0 < peak / 1024 < 160, f"import of a 200 MiB archive peaked at {peak / 1024:.0f} MiB"


def test_import_plain_zip_and_all(site: Archived) -> None:
    code, outcomes, stderr = _import(site, str(site.files["plain"]))
    assert code == 0 and outcomes is not None, stderr
    assert outcomes[0]["action"] == "imported" and outcomes[0]["form"] == "itflow-25.05-plain-zip"
    folder = site.sample.path / "uploads" / "backups"
    copied = folder / site.files["master_key"].name
    shutil.copy2(site.files["master_key"], copied)
    try:
        code, outcomes, stderr = _import(site, "--all")
    finally:
        copied.unlink()
    assert code == 0 and outcomes is not None, stderr
    assert [(o["action"], Path(o["path"]).name) for o in outcomes] == [("skipped", copied.name)]
    code, _, stderr = _import(site, "--all", str(site.files["plain"]))
    assert code == 2 and "not both" in stderr
