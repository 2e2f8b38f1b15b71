"""The fault matrix: every command that changes something, through every fault that
applies to it, on one module-scoped sample site (real MariaDB, real restic, real kills).

Each pair appends its row to the results file (tests/matrix.py) and fails when an
invariant broke: production unchanged or fully at the target state; the repository
sound (``restic check`` clean, no snapshot for a failed run, the next run succeeds with
no manual cleanup); no secret in any process's argv or environment (this site's repository
is a local folder: no process needs a secret in its environment), or in any output.
``make faults`` runs them all and writes RELIABILITY.md; the default run keeps the pairs
not marked ``slow_faults``.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from flowsafe.lock import site_lock
from flowsafe.mariadb.connection import connect
from flowsafe.mariadb.instance import PrivateServer
from flowsafe.sample import build_site, nightly_change
from tests.cli import Seen, alive, command_line, start, wait_for_child, watch_processes
from tests.matrix import Row, append
from tests.probes import Site, mounted

pytestmark = pytest.mark.faults

Done = subprocess.CompletedProcess[str]
RESTORE = ("--yes", "--no-safety-backup")

# The FLOWSAFE_FAULT steps of an in-place restore, in the order it reaches them.
STEPS = ["safety-backup", "journal-prepare", "db-load", "db-verify", "files-restore",
         "journal-swap", "swap-objects-dropped", "swap-db", "swap-objects", "swap-files-half",
         "swap-done", "journal-done"]
# The pairs of the default (CI) run: one kill before and one during the swap, the lock, the
# config and config.php faults that cost one short run each; `make faults` runs them all.
FAST = {
    "restore in place: kill -9 of flowsafe at step db-load",
    "restore in place: kill -9 of flowsafe at step swap-db",
    "backup: a second run while a backup runs",
    "restore in place: a second run while a backup runs",
    "backup: config: unknown key",
    "backup: config: bad TOML",
    "backup: config: password file missing",
    "backup: config unreadable (run by a non-root user)",
    "backup: read-only state folder",
    "backup: config.php: double quotes and comments",
    "backup: config.php: PHP that sets no database settings",
    "restore in place: manifest missing from the snapshot",
    "backup: interrupted restore (mid-swap), its new folder removed by hand",
}


class Matrix(Site):
    """The module's site: its first snapshot (the restore target) and its secrets."""

    first: str
    target_state: tuple[dict[str, int], dict[str, tuple[str, int, int]]]
    day = 0

    def secrets(self) -> dict[str, str]:
        etc = self.config.parent
        return {
            "repository password": (etc / "default.password").read_text().strip(),
            "database password": self.sample.db_password,
            "master key": self.sample.master_key,
            "signing key": (etc / "itflow.signing-key").read_text().strip(),
        }

    def change(self) -> None:
        """A night of work on the live site, so a restore has something to replace."""
        self.day += 1
        nightly_change(self.sample, self.server.target(), day=self.day, new_uploads=2)

    def snapshot_ids(self) -> set[str]:
        """Backups (not run records, not a restore's own pre-restore safety snapshots)."""
        listed = json.loads(self.restic("snapshots", "--json", "--tag", "flowsafe"))
        return {s["id"] for s in listed if "reason:pre-restore" not in s["tags"]}

    def sql(self, statement: str) -> None:
        with connect(self.target) as conn, conn.cursor() as cur:
            cur.execute(statement)

    @contextmanager
    def config_text(self, change: Callable[[str], str]) -> Iterator[None]:
        """The config changed for the block, put back after."""
        text = self.config.read_text()
        self.config.write_text(change(text))
        try:
            yield
        finally:
            self.config.write_text(text)


@pytest.fixture(scope="module")
def site(mariadb_server: PrivateServer, tmp_path_factory: pytest.TempPathFactory) -> Matrix:
    tmp = tmp_path_factory.mktemp("faults")
    sample = build_site(tmp / "www" / "itflow", mariadb_server.target(), database="fm_itflow",
                        seed=15)
    made = Matrix(sample, mariadb_server, tmp)
    made.ok("init", "--site", str(sample.path), "--name", "itflow", "--repo", str(tmp / "repo"),
            "--state-dir", str(made.state), "--db-socket", mariadb_server.socket,
            "--db-user", "root")
    # the pairs' prunes keep every snapshot: the restore target must outlive them (the
    # rewritten snapshots share its time, so which of them keep_last keeps is restic's pick)
    made.config.write_text(re.sub(r"keep_last = \d+", "keep_last = 1000",
                                  made.config.read_text()))
    made.ok("backup", "--reason", "nightly")
    made.first = made.snapshots()[0]["id"]
    made.target_state = made.snapshot_state()
    return made


# --- what a run left, and what leaked --------------------------------------------------


def _processes(site: Matrix) -> list[str]:
    """Live processes (other than this one) whose argv or environment names the site's
    folders: children that outlived a killed flowsafe."""
    mark = str(site.tmp)
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid() or not alive(
                int(entry.name)):
            continue
        line = command_line(int(entry.name))
        try:
            environ = (entry / "environ").read_bytes().decode("utf-8", "replace")
        except OSError:
            environ = ""
        if mark in line or mark in environ:
            found.append(f"process {entry.name} ({line.split(' ')[0].rsplit('/', 1)[-1]})")
    return found


def left_behind(site: Matrix, wait: float = 10) -> list[str]:
    """Processes, temp and staging folders, scratch databases, sibling folders and locks
    a run left (children of a killed flowsafe get ``wait`` seconds to die)."""
    deadline = time.monotonic() + wait
    while (procs := _processes(site)) and time.monotonic() < deadline:
        time.sleep(0.05)
    left = procs + site.leftovers()
    for folder in ("tmp", "staging", "servers"):
        left += [f"{folder}/{p.name}" for p in (site.state / folder).glob("*")]
    lock = site.state / "locks" / "itflow.lock"
    if lock.exists():
        fd = os.open(lock, os.O_RDONLY)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            left.append("site lock held")
        finally:
            os.close(fd)
    left += [f"restic lock {p.name[:8]}" for p in (site.tmp / "repo" / "locks").glob("*")]
    return left


def leaks(site: Matrix, seen: list[Seen], outputs: list[str]) -> list[str]:
    """Secrets found in any argv, any environment, or any output."""
    found = []
    for name, secret in site.secrets().items():
        for process in seen:
            if secret in process.argv:
                found.append(f"{name} in the argv of {process.argv.split(' ')[0]}")
            if secret in process.environ:
                found.append(f"{name} in the environment of {process.argv.split(' ')[0]}")
        found += [f"{name} in the output" for text in outputs if secret in text]
    return sorted(set(found))


def _repository_clean(site: Matrix) -> bool:
    try:
        site.restic("check", "--no-lock")
    except subprocess.CalledProcessError:
        return False
    return True


# --- the cases -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    """One (command, fault) pair: ``act`` applies the fault, runs the command and takes the
    fault away again; the run must end with one of ``exits`` and say ``says``."""

    command: str
    fault: str
    act: Callable[[Matrix], Done]
    exits: tuple[int, ...]
    says: str = ""
    changes: bool = False  # a restore: production may end at the target state
    next_run: tuple[str, ...] = ("backup",)

    @property
    def id(self) -> str:
        return f"{self.command}: {self.fault}"


def _run(*args: str, env: dict[str, str] | None = None) -> Callable[[Matrix], Done]:
    return lambda site: site.run(*args, env=env)


def _restore(site: Matrix, *extra: str, env: dict[str, str] | None = None) -> Done:
    return site.run("restore", site.first, *RESTORE, *extra, env=env)


def _killed_at(step: str) -> Callable[[Matrix], Done]:
    def act(site: Matrix) -> Done:
        extra = ("--yes",) if step == "safety-backup" else RESTORE
        return site.run("restore", site.first, *extra, env={"FLOWSAFE_FAULT": step})
    return act


def _finished(proc: subprocess.Popen[str]) -> Done:
    out, err = proc.communicate(timeout=240)
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


@contextmanager
def _fat_table(site: Matrix) -> Iterator[None]:
    """A table big enough for a dump to be caught mid-way."""
    site.sql("CREATE TABLE fat (id INT PRIMARY KEY, body TEXT)")
    site.sql("INSERT INTO fat SELECT seq, REPEAT(MD5(seq), 8) FROM seq_1_to_150000")
    try:
        yield
    finally:
        site.sql("DROP TABLE fat")


def _kill_child(args: tuple[str, ...], name: str, fat: bool = False
                ) -> Callable[[Matrix], Done]:
    """kill -9, from outside, of flowsafe's first child running ``name``."""
    def act(site: Matrix) -> Done:
        with _fat_table(site) if fat else _nothing():
            proc = start(site.config, *(a if a != "FIRST" else site.first for a in args))
            os.kill(wait_for_child(proc.pid, name), signal.SIGKILL)
            return _finished(proc)
    return act


@contextmanager
def _nothing() -> Iterator[None]:
    yield


def _kill_connection(args: tuple[str, ...], where: str, fat: bool = False
                     ) -> Callable[[Matrix], Done]:
    """KILL, on the server, of flowsafe's connections that match ``where`` (a condition on
    information_schema.PROCESSLIST) while the command runs."""
    def act(site: Matrix) -> Done:
        with _fat_table(site) if fat else _nothing():
            proc = start(site.config, *(a if a != "FIRST" else site.first for a in args))
            deadline = time.monotonic() + 60
            killed = False
            while not killed and proc.poll() is None and time.monotonic() < deadline:
                with connect(site.server.target()) as conn, conn.cursor() as cur:
                    cur.execute("SELECT ID FROM information_schema.PROCESSLIST WHERE "
                                f"ID <> CONNECTION_ID() AND ({where})")
                    for (thread,) in cur.fetchall():
                        cur.execute(f"KILL {int(thread)}")
                        killed = True
                time.sleep(0.005)
            done = _finished(proc)
            assert killed, f"no connection matched {where}: {done.stderr}"
            return done
    return act


def _tiny(where: Callable[[Matrix], Path], args: Callable[[Matrix], tuple[str, ...]],
          size: str = "size=256k") -> Callable[[Matrix], Done]:
    def act(site: Matrix) -> Done:
        with mounted(where(site), "-o", size):
            return site.run(*args(site))
    return act


def _staging_full(site: Matrix) -> Done:
    tiny = site.tmp / "tiny-state"
    with mounted(tiny, "-o", "size=256k"), site.config_text(
            lambda t: t.replace(f'state_dir = "{site.state}"', f'state_dir = "{tiny}"')):
        return site.run("backup")


def _elsewhere_full(site: Matrix) -> Done:
    tiny = site.tmp / "tiny-dest"
    try:
        with mounted(tiny, "-o", "size=1m"):
            return site.run("restore", site.first, "--to-path", str(tiny / "itflow"),
                            "--to-db", "fm_elsewhere", "--db-socket", site.server.socket,
                            "--yes")
    finally:
        with connect(site.server.target()) as conn, conn.cursor() as cur:
            cur.execute("DROP DATABASE IF EXISTS fm_elsewhere")


def _flip(path: Path) -> None:
    data = bytearray(path.read_bytes())
    for offset in range(16, len(data) - 16, max(1, len(data) // 40)):
        data[offset] ^= 0xFF
    path.chmod(0o600)
    path.write_bytes(bytes(data))


def _biggest(folder: Path) -> Path:
    return max((p for p in folder.rglob("*") if p.is_file()), key=lambda p: p.stat().st_size)


def _damaged(damage: Callable[[Path], None], *args: str) -> Callable[[Matrix], Done]:
    """The command on a damaged copy of the repository (the real one stays as it was)."""
    def act(site: Matrix) -> Done:
        copy = site.tmp / "damaged-repo"
        shutil.rmtree(copy, ignore_errors=True)
        shutil.copytree(site.tmp / "repo", copy)
        damage(copy)
        try:
            with site.config_text(lambda t: t.replace(f'url = "{site.tmp / "repo"}"',
                                                      f'url = "{copy}"')):
                return site.run(*(a if a != "FIRST" else site.first for a in args))
        finally:
            shutil.rmtree(copy, ignore_errors=True)
    return act


def _damaged_snapshot(site: Matrix) -> Done:
    """The restore target's own snapshot file damaged (restic then no longer lists it)."""
    return _damaged(lambda r: _flip(next((r / "snapshots").glob(f"{site.first}*"))),
                    "restore", "FIRST", *RESTORE)(site)


def _stale_lock_from_a_dead_host(site: Matrix) -> Done:
    """A restic lock left by a restic on another host that died (kill -9) holding it."""
    env = {**os.environ, "RESTIC_REPOSITORY": str(site.tmp / "repo"),
           "RESTIC_PASSWORD_FILE": str(site.config.parent / "default.password")}
    holder = subprocess.Popen(
        ["unshare", "--uts", "sh", "-c", "hostname dead-host && exec restic backup --stdin "
         "--stdin-filename stale"], env=env, stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    locks = site.tmp / "repo" / "locks"
    deadline = time.monotonic() + 30
    while not any(locks.glob("*")) and time.monotonic() < deadline:
        time.sleep(0.02)
    holder.kill()
    holder.wait()
    try:
        return site.run("prune")
    finally:
        for lock in locks.glob("*"):
            lock.unlink()


def _read_only(where: Callable[[Matrix], Path], *args: str) -> Callable[[Matrix], Done]:
    def act(site: Matrix) -> Done:
        folder = where(site)
        with mounted(folder, "ro", kind="bind", source=str(folder)):
            return site.run(*args)
    return act


def _as_nobody(site: Matrix) -> Done:
    """A non-root admin runs flowsafe: the config (0600, root's) cannot be read."""
    return subprocess.run(
        ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups", sys.executable,
         "-m", "flowsafe", "--config", str(site.config), "backup"],
        capture_output=True, text=True, check=False, timeout=120)


def _busy(action: str, *args: str) -> Callable[[Matrix], Done]:
    def act(site: Matrix) -> Done:
        with site_lock(site.state, "itflow", action):
            return site.run(*args)
    return act


def _from_the_future(site: Matrix) -> Done:
    """A snapshot stamped a year ahead (the clock was wrong when it was taken): prune must
    still keep today's newest backup."""
    ahead = datetime.now(UTC) + timedelta(days=365)
    future = site.rewrite_snapshot(site.first, lambda copy: None, time=ahead)
    site.ok("backup", "--reason", "nightly")
    newest = site.snapshots()[-1]["id"]
    try:
        with site.config_text(lambda t: re.sub(r"keep_(\w+) = \d+", r"keep_\1 = 1", t)):
            done = site.run("prune")
        kept = {s["id"] for s in site.snapshots()}
        if newest not in kept:
            done.stderr += "\nprune removed today's newest backup"
            done.returncode = 99
        return done
    finally:
        site.restic("forget", future)


def _config(change: Callable[[Matrix, str], str], *args: str) -> Callable[[Matrix], Done]:
    def act(site: Matrix) -> Done:
        with site.config_text(lambda text: change(site, text)):
            return site.run(*(args or ("backup",)))
    return act


def _password_file(mode: int | None) -> Callable[[Matrix], Done]:
    def act(site: Matrix) -> Done:
        path = site.config.parent / "default.password"
        kept = path.read_bytes()
        if mode is None:
            path.unlink()
        else:
            path.chmod(mode)
        try:
            return site.run("backup")
        finally:
            path.write_bytes(kept)
            path.chmod(0o600)
    return act


def _config_php(edit: Callable[[str], str]) -> Callable[[Matrix], Done]:
    def act(site: Matrix) -> Done:
        php = site.sample.path / "config.php"
        text = php.read_text()
        php.write_text(edit(text))
        try:
            return site.run("backup")
        finally:
            php.write_text(text)
    return act


def _setting(name: str, new: Callable[[str], str]) -> Callable[[str], str]:
    """config.php with ``$name = '...';`` written another way."""
    def edit(text: str) -> str:
        found = re.search(rf"^\${name} = '([^']*)';$", text, re.M)
        assert found, name
        return text.replace(found.group(0), new(found.group(1)))
    return edit


def _rewritten(change: Callable[[Path], None], *args: str) -> Callable[[Matrix], Done]:
    def act(site: Matrix) -> Done:
        snap = site.rewrite_snapshot(site.first, change, "flowsafe,site:itflow,reason:altered")
        try:
            return site.run(*(a if a != "SNAP" else snap for a in args))
        finally:
            site.restic("forget", snap)
    return act


def _manifest_altered(copy: Path) -> None:
    manifest = copy / "manifest.json"
    manifest.write_text(manifest.read_text().replace('"reason": "nightly"', '"reason": "x"'))


def _other_site(site: Matrix) -> Done:
    text = site.config.read_text()
    site.ok("init", "--site", str(site.sample.path), "--name", "other", "--db-socket",
            site.server.socket, "--db-user", "root")
    site.ok("backup", "--site", "other")
    theirs = json.loads(site.ok("snapshots", "--site", "other", "--json").stdout)[0]["id"]
    try:
        return site.run("restore", theirs, "--site", "itflow", *RESTORE)
    finally:
        site.restic("forget", theirs)
        site.config.write_text(text)


def _removed_by_hand(step: str, what: str) -> Callable[[Matrix], Done]:
    """A restore killed at ``step``, its scratch database or folders then removed by hand:
    the next backup must say what is left and how to discard it."""
    def act(site: Matrix) -> Done:
        killed = site.run("restore", site.first, *RESTORE, env={"FLOWSAFE_FAULT": step})
        assert killed.returncode == -9, killed.stderr
        current = site.journal()["current"]
        if what == "database":
            db = current["scratch_db"] or current["db"]["source"]
            with connect(site.server.target()) as conn, conn.cursor() as cur:
                cur.execute(f"DROP DATABASE IF EXISTS `{db}`")
        else:
            shutil.rmtree(current["files"]["source"], ignore_errors=True)
        done = site.run("backup")
        if done.returncode != 0:
            site.ok("undo", "--forget", "--yes")
        return done
    return act


def _unknown_key(site: Matrix, text: str) -> str:
    return text.replace("[retention]\n", "[retention]\nkeep_forever = 1\n")


def _wrong_type(site: Matrix, text: str) -> str:
    return re.sub(r"keep_last = \d+", 'keep_last = "three"', text)


def _bad_toml(site: Matrix, text: str) -> str:
    return text.replace("[retention]", "[retention", 1)


def _unknown_repository(site: Matrix, text: str) -> str:
    return text.replace('repository = "default"', 'repository = "nowhere"')


CASES = [
    *(Case("restore in place", f"kill -9 of flowsafe at step {step}", _killed_at(step),
           (-9,), changes=True) for step in STEPS),
    Case("backup", "kill -9 of mariadb-dump", _kill_child(("backup",), "mariadb-dump", True),
         (1,), "mariadb-dump"),
    Case("backup", "kill -9 of restic", _kill_child(("backup",), "restic", True), (1,),
         "restic"),
    Case("restore in place", "kill -9 of restic",
         _kill_child(("restore", "FIRST", *RESTORE), "restic"), (1, 3), "restic",
         changes=True),
    Case("drill", "kill -9 of the private mariadbd (the server stopped mid-drill)",
         _kill_child(("drill",), "mariadbd"), (1, 3)),
    Case("drill", "kill -9 of restic", _kill_child(("drill",), "restic"), (1, 3)),
    Case("backup", "KILL of the dump's connection",
         _kill_connection(("backup",), "INFO LIKE '%SQL_NO_CACHE%`fat`%'", fat=True), (1,),
         "mariadb-dump"),
    Case("restore in place", "KILL of the loaders' connections",
         _kill_connection(("restore", "FIRST", *RESTORE), "DB LIKE '%\\_\\_new\\_%'"),
         (1, 3), changes=True),
    Case("backup", "disk full: staging", _staging_full, (1,), "no space left"),
    Case("backup", "disk full: restic cache",
         _tiny(lambda s: s.state / "cache", lambda s: ("backup",), "size=64k"), (0, 1),
         "restic"),
    Case("restore elsewhere", "disk full: the destination", _elsewhere_full, (1,), "space"),
    Case("drill", "damaged pack", _damaged(lambda r: _flip(_biggest(r / "data")), "drill"),
         (1, 3)),
    Case("restore in place", "damaged pack",
         _damaged(lambda r: _flip(_biggest(r / "data")), "restore", "FIRST", *RESTORE),
         (1, 3), changes=True),
    Case("drill", "missing pack",
         _damaged(lambda r: _biggest(r / "data").unlink(), "drill"), (1, 3)),
    # restic skips an index it cannot read and uploads again what only it listed: the new
    # snapshot is whole (a drill's check then reports the damaged index)
    Case("backup", "damaged index",
         _damaged(lambda r: _flip(_biggest(r / "index")), "backup"), (0, 1)),
    # restic reads snapshot files from its cache when it has them: the restore may go on
    # from the intact cached copy (its manifest and signature still checked)
    Case("restore in place", "damaged snapshot file",
         _damaged_snapshot, (0, 1, 2), changes=True),
    Case("backup", "damaged key file",
         _damaged(lambda r: _flip(_biggest(r / "keys")), "backup"), (1, 2)),
    Case("prune", "stale restic lock from a dead host", _stale_lock_from_a_dead_host, (0, 1)),
    Case("backup", "read-only repository",
         _read_only(lambda s: s.tmp / "repo", "backup"), (1,)),
    Case("backup", "read-only state folder", _read_only(lambda s: s.state, "backup"), (1, 2)),
    Case("backup", "config unreadable (run by a non-root user)", _as_nobody, (2,), "config"),
    *(Case(command, f"a second run while a {holder} runs", _busy(holder, *args), (1,),
           "another flowsafe")
      for command, holder, args in (
          ("backup", "backup", ("backup",)), ("restore in place", "backup",
                                              ("restore", "latest", *RESTORE)),
          ("prune", "restore", ("prune",)), ("undo", "backup", ("undo", "--yes")))),
    Case("drill", "run while a backup runs (it only reads the repository)",
         _busy("backup", "drill"), (0,)),
    Case("backup", "config: unknown key", _config(_unknown_key), (2,), "keep_forever"),
    Case("backup", "config: wrong type", _config(_wrong_type), (2,), "keep_last"),
    Case("backup", "config: bad TOML", _config(_bad_toml), (2,), "not valid TOML"),
    Case("backup", "config: unknown site name", _run("backup", "--site", "nope"), (2,),
         "no site named 'nope'"),
    Case("backup", "config: unknown repository name", _config(_unknown_repository), (2,),
         "nowhere"),
    Case("backup", "config: password file missing", _password_file(None), (2,),
         "default.password"),
    Case("backup", "config: password file world-readable", _password_file(0o644), (2,),
         "chmod 600"),
    Case("backup", "config.php: double quotes and comments",
         _config_php(_setting("dbhost", lambda v: f'# host\n$dbhost = "{v}"; /* here */')),
         (0,)),
    Case("backup", "config.php: define() form",
         _config_php(_setting("database", lambda v: f"define('DB_NAME', '{v}');\n"
                                                    f"$database = DB_NAME;")), (0, 2),
         "config.php"),
    Case("backup", "config.php: heredoc",
         _config_php(_setting("dbhost", lambda v: f"$dbhost = <<<EOT\n{v}\nEOT;")),
         (0, 2), "config.php"),
    Case("backup", "config.php: unicode and a BOM",
         _config_php(lambda t: "\ufeff" + t.replace("<?php", "<?php\n// café ☕", 1)), (0, 2)),
    Case("backup", "config.php: PHP that sets no database settings",
         _config_php(lambda t: "<?php\necho 'hello';\n"), (2,), "config.php"),
    Case("restore in place", "manifest missing from the snapshot",
         _rewritten(lambda c: (c / "manifest.json").unlink(), "restore", "SNAP", *RESTORE),
         (3,), "has no manifest.json", changes=True),
    Case("restore in place", "manifest altered in the snapshot",
         _rewritten(_manifest_altered, "restore", "SNAP", *RESTORE), (3,), "signature",
         changes=True),
    Case("restore in place", "a snapshot of another site", _other_site, (2,),
         "belongs to site 'other'", changes=True),
    Case("backup", "interrupted restore, its scratch database dropped by hand",
         _removed_by_hand("db-verify", "database"), (0, 1)),
    Case("backup", "interrupted restore (mid-swap), its new folder removed by hand",
         _removed_by_hand("swap-files-half", "folders"), (0,)),
    Case("backup", "interrupted restore (files not yet swapped), its new folder removed",
         _removed_by_hand("swap-db", "folders"), (0,)),
    # last: its prune removes the older snapshots, the restore target among them
    Case("prune", "a snapshot from the future", _from_the_future, (0,)),
]


@pytest.mark.parametrize("case", [
    pytest.param(c, id=c.id, marks=[] if c.id in FAST else [pytest.mark.slow_faults])
    for c in CASES])
def test_fault(site: Matrix, case: Case) -> None:
    try:
        row, stderr = _check(site, case)
    except Exception as exc:  # the harness broke: the pair still gets its (not held) row
        append(Row(command=case.command, fault=case.fault, exit=-1, message=str(exc)[:200],
                   left=[], production=False, repository=False, secrets=False,
                   expected=False, problems=[f"the test could not run: {type(exc).__name__}"]))
        raise
    append(row)
    assert row.held, (row, stderr)


def _check(site: Matrix, case: Case) -> tuple[Row, str]:
    if case.changes:
        site.change()
    before = site.snapshot_state()
    snapshots = site.snapshot_ids()
    problems: list[str] = []
    started = time.monotonic()
    with watch_processes(0.005) as seen:
        try:
            done = case.act(site)
        except subprocess.TimeoutExpired as exc:  # the run hung: killed, and recorded so
            done = subprocess.CompletedProcess(exc.cmd, 124, "", f"error: hung, killed after "
                                               f"{exc.timeout:.0f} s")
        left = left_behind(site)
        if done.returncode != 0 and site.snapshot_ids() != snapshots:
            problems.append("a snapshot was recorded for a failed run")
        after_fault = site.snapshot_state()
        after = site.run(*case.next_run)
    lines = done.stderr.strip().splitlines()
    message = "(killed)" if done.returncode == -9 else next(
        (line for line in lines if line.startswith("error:")), lines[-1] if lines else "")
    production = after_fault in (before, site.target_state) if case.changes else (
        after_fault == before)
    production = production or done.returncode == -9  # judged once the next run recovered
    if not production:
        problems.append("production changed")
    state = site.snapshot_state()
    if state != before and not (case.changes and state == site.target_state):
        production = False
        problems.append("production changed after the next run")
    if after.returncode != 0:
        problems.append(f"the next {' '.join(case.next_run)} failed: {after.stderr.strip()}")
    still = left_behind(site, wait=0)
    if still:
        problems.append("left after the next run: " + ", ".join(still))
    clean = _repository_clean(site)
    if not clean:
        problems.append("restic check failed")
    leaked = leaks(site, seen, [done.stdout, done.stderr, after.stdout, after.stderr])
    problems += leaked
    expected = done.returncode in case.exits and "Traceback" not in done.stderr and (
        case.says in done.stderr or done.returncode == 0)
    if not expected:
        problems.append(f"expected exit {case.exits} saying {case.says!r}")
    row = Row(command=case.command, fault=case.fault, exit=done.returncode, message=message,
              left=left, production=production,
              repository=clean and after.returncode == 0 and not still and not any(
                  "snapshot" in p for p in problems),
              secrets=not leaked, expected=expected, problems=problems,
              seconds=round(time.monotonic() - started, 1))
    return row, done.stderr


def test_fast_pairs_exist() -> None:
    assert {c.id for c in CASES} >= FAST
    assert len({c.id for c in CASES}) == len(CASES)


def test_every_file_is_private(site: Matrix) -> None:
    """After the pairs above (backups, restores, drills, records, journals): every file
    flowsafe wrote in its state and config folders is 0600, every folder 0700 (the state
    folder 0711: the private servers' user passes through it; their data folders belong to
    MariaDB, and restic's cache to restic)."""
    site.ok("drill")
    loose = []
    for root in (site.state, site.config.parent):
        for path in [root, *root.rglob("*")]:
            if {"servers", "cache"} & set(path.relative_to(root).parts) or path.is_symlink():
                continue
            mode = path.stat().st_mode & 0o777
            wanted = {0o700, 0o711} if path == site.state else {0o700}
            if mode not in (wanted if path.is_dir() else {0o600}):
                loose.append(f"{path.relative_to(site.tmp)} {mode:o}")
    assert loose == []
    records = [p for p in site.state.rglob("*") if p.is_file() and not {"servers", "cache"} & set(
        p.relative_to(site.state).parts)]
    assert records, "no run records, journal or history in the state folder"
    for name, secret in site.secrets().items():
        assert not [p for p in records if secret.encode() in p.read_bytes()], name
