"""Drills end to end through the CLI: the happy path, every planted fault, drill history
seen from a fresh machine; real private servers, real restic, real PHP."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from flowsafe.mariadb.connection import DbTarget, connect
from flowsafe.mariadb.instance import PrivateServer
from flowsafe.sample import SampleSite, build_site
from flowsafe.secret import write_private
from tests.cli import SiteUnderTest, alive, children, command_line, flowsafe, start


class Drilled(SiteUnderTest):
    """A backed-up sample site, its config, a key file."""

    def __init__(self, sample: SampleSite, server: PrivateServer, tmp: Path) -> None:
        super().__init__(sample, server, tmp)
        self.key = tmp / "master.key"
        write_private(self.key, sample.master_key + "\n")

    def drill(self, *args: str, env: dict[str, str] | None = None
              ) -> tuple[int, dict[str, dict[str, str]]]:
        done = self.run("drill", "--json", *args, env=env)
        assert done.returncode in (0, 3), done.stderr
        report = json.loads(done.stdout)[0]
        return done.returncode, {c["name"]: c for c in report["checks"]}


def _make(server: PrivateServer, tmp: Path, name: str = "itflow") -> Drilled:
    sample = build_site(tmp / "www" / name, server.target(),
                        database=f"dr_{tmp.name[-10:].replace('-', '_')}_{name}", seed=5)
    made = Drilled(sample, server, tmp)
    for args in (("init", "--site", str(sample.path), "--name", name, "--repo",
                  str(tmp / "repo"), "--state-dir", str(tmp / "state"), "--db-socket",
                  server.socket),):
        done = made.run(*args)
        assert done.returncode == 0, done.stderr
    return made


@pytest.fixture
def site(mariadb_server: PrivateServer, tmp_path: Path) -> Drilled:
    return _make(mariadb_server, tmp_path)


def _backup(site: Drilled, *args: str) -> None:
    done = site.run("backup", *args)
    assert done.returncode == 0, done.stderr


def test_drill_passes_and_history_reaches_a_fresh_machine(site: Drilled) -> None:
    _backup(site)
    code, checks = site.drill("latest", "--key-file", str(site.key))
    assert code == 0, checks
    results = {n: c["result"] for n, c in checks.items()}
    assert results.pop("views, triggers, routines") == "skipped"  # the sample has none
    assert set(results.values()) == {"ok"}, checks
    assert checks["login page"]["detail"].startswith("GET /login.php answered 200")
    assert "credentials decrypt" in checks["credentials decrypt"]["detail"]
    human = site.run("drill")
    assert human.returncode == 0 and "RESTORABLE" in human.stdout

    fresh = site.tmp / "fresh" / "flowsafe.toml"
    attach = flowsafe(fresh, "init", "--site", str(site.sample.path), "--name", "itflow",
                      "--repo", str(site.tmp / "repo"), "--repo-password-file",
                      str(site.config.parent / "default.password"), "--state-dir",
                      str(site.tmp / "fresh-state"), "--db-socket", site.server.socket)
    assert attach.returncode == 0, attach.stderr
    status = json.loads(flowsafe(fresh, "status", "--json").stdout)[0]
    snap = json.loads(site.run("snapshots", "--json").stdout)[0]["short_id"]
    assert status["last_verified_snapshot"] == snap and status["last_verified"]
    assert "last verified restorable" in flowsafe(fresh, "status").stdout
    # Drill records are not backups: listing and retention do not see them.
    assert len(json.loads(site.run("snapshots", "--json").stdout)) == 1


def test_status_demands_a_recent_drill(site: Drilled) -> None:
    _backup(site)
    site.config.write_text(site.config.read_text().replace("max_drill_age_days = 8.0",
                                                           "max_drill_age_days = 1e-07"))
    stale = site.run("status")
    assert stale.returncode == 1 and "no successful drill yet" in stale.stdout
    assert site.run("drill").returncode == 0
    time.sleep(0.1)
    stale = site.run("status")
    assert stale.returncode == 1 and "last successful drill was" in stale.stdout


def test_damaged_pack_file(site: Drilled) -> None:
    _backup(site)
    packs = sorted((site.tmp / "repo" / "data").rglob("*"), key=lambda p: p.stat().st_size)
    victim = packs[-1]
    data = bytearray(victim.read_bytes())
    for offset in range(100, len(data) - 100, max(1, len(data) // 50)):
        data[offset] ^= 0xFF
    victim.chmod(0o600)
    victim.write_bytes(bytes(data))
    code, checks = site.drill()
    assert code == 3
    failed = {n: c["detail"] for n, c in checks.items() if c["result"] == "failed"}
    assert failed, checks
    assert any(detail for detail in failed.values())


def _tampered_snapshot(site: SiteUnderTest, keep_signature: bool = True) -> str:
    """A newer backup whose clients table file no longer matches its manifest's digests
    (its signature copied from the original, or none); returns its id."""
    def damage(copy: Path) -> None:
        table = copy / "db" / "tables" / "clients.sql"
        table.write_bytes(table.read_bytes().replace(b"VALUES (", b"VALUES  (", 1))

    return site.rewrite_snapshot(site.snapshots()[-1]["id"], damage,
                                 "flowsafe,site:itflow,reason:tampered", keep_signature)


def test_altered_table_file(site: Drilled) -> None:
    _backup(site)
    tampered = _tampered_snapshot(site)
    code, checks = site.drill(tampered)
    assert code == 3
    assert checks["load database"]["result"] == "failed"
    assert "'clients': chunk" in checks["load database"]["detail"]
    assert checks["tables present"]["result"] == "skipped"


def test_an_unsigned_snapshot_is_not_drilled(site: Drilled) -> None:
    _backup(site)
    tampered = _tampered_snapshot(site, keep_signature=False)
    code, checks = site.drill(tampered)
    assert code == 3
    assert checks["read manifest"]["result"] == "failed"
    assert "is not signed" in checks["read manifest"]["detail"]
    code, checks = site.drill(tampered, "--trust-unsigned")
    assert code == 3 and "NOT verified" in checks["read manifest"]["detail"]
    assert checks["load database"]["result"] == "failed"


def test_values_that_mariadb_dump_changes_are_caught(site: Drilled) -> None:
    """FLOAT: the re-dumped text agrees with the dump, but the values do not."""
    with connect(site.server.target(site.sample.database)) as conn, conn.cursor() as cur:
        cur.execute("CREATE TABLE measures (id INT PRIMARY KEY, f FLOAT)")
        cur.execute("INSERT INTO measures VALUES (1, 1.0000001), (2, 16777217), (3, 0.5)")
    done = site.run("backup")
    assert done.returncode == 0 and "measures.f is FLOAT" in done.stdout, done.stderr
    code, checks = site.drill()
    assert code == 3
    assert checks["table values"]["result"] == "failed"
    assert "measures (measures.f is FLOAT" in checks["table values"]["detail"]


def test_upload_missing_from_the_snapshot(site: Drilled) -> None:
    with connect(site.server.target(site.sample.database)) as conn, conn.cursor() as cur:
        cur.execute("SELECT file_client_id, file_reference_name FROM files LIMIT 1")
        row = cur.fetchone()
    assert row is not None
    (site.sample.path / "uploads" / "clients" / str(row[0]) / str(row[1])).unlink()
    _backup(site)
    code, checks = site.drill()
    assert code == 3
    assert checks["uploads referenced"]["result"] == "failed"
    assert f"clients/{row[0]}/{row[1]}" in checks["uploads referenced"]["detail"]


def test_wrong_key_file(site: Drilled) -> None:
    _backup(site)
    wrong = site.tmp / "wrong.key"
    write_private(wrong, "A" * 16)
    code, checks = site.drill("--key-file", str(wrong))
    assert code == 3
    assert "do not decrypt with this key" in checks["credentials decrypt"]["detail"]
    loose = site.tmp / "loose.key"
    loose.write_text(site.sample.master_key)
    loose.chmod(0o644)
    done = site.run("drill", "--key-file", str(loose))
    assert done.returncode == 2 and "readable by other users" in done.stderr


def test_mariadbd_missing(site: Drilled) -> None:
    _backup(site)
    bin_dir = site.tmp / "bin"
    bin_dir.mkdir()
    restic = shutil.which("restic")
    assert restic
    (bin_dir / "restic").symlink_to(restic)
    done = site.run("drill", env={"PATH": str(bin_dir)})
    assert done.returncode == 2
    assert "mariadbd is not installed" in done.stderr and "mariadb-server" in done.stderr


def test_no_free_port(site: Drilled) -> None:
    _backup(site)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        site.config.write_text(site.config.read_text().replace("php_port = 0",
                                                               f"php_port = {port}"))
        code, checks = site.drill()
    assert code == 3
    assert f"cannot use port {port} on 127.0.0.1" in checks["login page"]["detail"]


def test_killed_drill_leaves_no_server(site: Drilled) -> None:
    _backup(site)
    proc = start(site.config, "drill")
    deadline = time.monotonic() + 60
    server = None
    while server is None and time.monotonic() < deadline:
        server = next((c for c in children(proc.pid) if "mariadbd" in command_line(c)), None)
        time.sleep(0.01)
    assert server is not None, "the drill started no private MariaDB"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    deadline = time.monotonic() + 10
    while alive(server):
        assert time.monotonic() < deadline, "mariadbd outlived the drill"
        time.sleep(0.05)
    assert site.run("drill").returncode == 0
    assert list((site.tmp / "state" / "tmp").iterdir()) == []
    assert list((site.tmp / "state" / "servers").iterdir()) == []


@pytest.fixture
def kept(site: Drilled) -> Iterator[tuple[Drilled, dict[str, object]]]:
    _backup(site)
    done = site.run("drill", "--keep", "--json")
    assert done.returncode == 0, done.stderr
    report: dict[str, object] = json.loads(done.stdout)[0]
    yield site, report
    for folder in (site.tmp / "state" / "servers").glob("flowsafe-mariadb-*"):
        owner = (folder / "flowsafe.owner").read_text().split()
        os.kill(int(owner[1]), signal.SIGTERM)
        link = folder / "socket.dir"  # a socket moved to /tmp for a long path
        if link.exists():
            shutil.rmtree(link.read_text().strip(), ignore_errors=True)


def test_keep_leaves_a_server_to_inspect(kept: tuple[Drilled, dict[str, object]]) -> None:
    site, report = kept
    found = re.search(r"--socket=(\S+)", str(report["kept"]))
    assert found and "kill" in str(report["kept"])
    target = DbTarget(database=site.sample.database, socket=found.group(1))
    with connect(target) as conn, conn.cursor() as cur:
        cur.execute("SELECT COUNT(*) FROM clients")
        row = cur.fetchone()
        assert row is not None and row[0] > 0
        cur.execute("SELECT @@skip_networking, @@secure_file_priv, @@local_infile, USER()")
        networking, files, infile, user = cur.fetchone()
        assert (networking, infile, user) == (1, 0, "root@localhost")
        assert files.startswith(str(site.tmp / "state" / "servers"))
        cur.execute("SELECT User FROM mysql.global_priv ORDER BY User")
        assert {r[0] for r in cur.fetchall()} <= {"root", "mariadb.sys", "itflow_drill"}
    # Another local user can neither reach the socket nor, through a group, log in.
    other = subprocess.run(["su", "nobody", "-s", "/bin/sh", "-c",
                            f"mariadb --socket={found.group(1)} -uroot -e 'SELECT 1'"],
                           capture_output=True, text=True, check=False)
    assert other.returncode != 0 and "(13)" in other.stderr, other.stderr  # EACCES
    owner = subprocess.run(["ps", "-o", "user=", "-C", "mariadbd"], capture_output=True,
                           text=True, check=False).stdout.split()
    assert "mysql" in owner


def test_drill_all_sites(site: Drilled) -> None:
    second = site.tmp / "second"
    second.mkdir()
    other = build_site(second / "www" / "other", site.server.target(),
                       database=f"dr_other_{site.tmp.name[-8:].replace('-', '_')}", seed=6)
    done = site.run("init", "--site", str(other.path), "--name", "other", "--db-socket",
                    site.server.socket)
    assert done.returncode == 0, done.stderr
    _backup(site, "--site", "itflow")
    _backup(site, "--site", "other")
    done = site.run("drill", "--all", "--json")
    assert done.returncode == 0, done.stderr
    assert sorted(r["site"] for r in json.loads(done.stdout)) == ["itflow", "other"]
