"""Benchmark of ``flowsafe backup`` (issue 2), written to the "Backup (issue 2)" section
of BENCHMARKS.md.

Run as ``.venv/bin/python -m bench.backup [--scale S] [--nights N] [--nights-scale S2]
[--workdir DIR] [--keep] [--no-report]`` (``make bench`` uses the defaults). Everything
runs in one process on one private MariaDB started here, side by side:

1. build the benchmark-scale sample site (dump >= 1 GB, uploads >= 2 GB at BENCH_SCALE);
2. baseline ``mariadb-dump --single-transaction db > /dev/null`` and ``restic backup`` of
   the site tree (fresh repository, flowsafe's restic flags), and a baseline B that also
   stores the dump (dump to a file, one restic backup of file + tree), against
   ``flowsafe init`` + ``flowsafe backup`` run as a child process, in wall and CPU time
   (children included, from ``getrusage``); the flowsafe process is watched every
   20 ms for its peak RSS (``VmHWM`` of ``/proc/<pid>/status``, children not counted)
   and for its ``mariadb-dump`` and ``restic backup`` children, which give the phases;
3. a second backup after one realistic night (``nightly_change``), and a third after an
   adversarial night (1 % of the rows of the big tables updated at random);
4. N nights at a smaller scale: flowsafe's repository against the naive script that keeps
   a ``mariadb-dump | gzip`` and a ``tar czf`` of the tree per night.

Every child is waited for (killed on error or after ``RUN_LIMIT`` seconds), the MariaDB
server is stopped, and the run's folder is removed at the end unless ``--keep``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import resource
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

from flowsafe import __version__
from flowsafe.backup import restic_excludes
from flowsafe.itflow.site import DEFAULT_EXCLUDES
from flowsafe.mariadb.connection import DbTarget, connect, option_file_text, server_version
from flowsafe.mariadb.instance import PrivateServer, private_server
from flowsafe.sample import BENCH_SCALE, SampleSite, build_site, nightly_change
from flowsafe.scan import scan_tree
from flowsafe.secret import Secret, write_private

ROOT = Path(__file__).resolve().parent.parent
REPORT = ROOT / "BENCHMARKS.md"
SECTION = "## Backup (issue 2)"
DEFAULT_WORKDIR = Path("/var/tmp/flowsafe-bench")
DEFAULT_NIGHTS = 30
NIGHTS_SCALE = 18.0  # the sample's dump is ~5.6 MB per unit of scale: ~100 MB
POLL_SECONDS = 0.02
RUN_LIMIT = 3600.0  # seconds any one child may run before it is killed
SITE_NAME = "itflow"
SEED = 2
BIG_TABLE_SHARE = 0.02  # "big" tables hold at least this share of the data
TEXT_TYPES = ("text", "mediumtext", "longtext")
TARGET_RATIO = 1.15
TARGET_RSS = 150 * 10**6
TARGET_ADDED = 5.0
MB = 10**6


class BenchError(RuntimeError):
    """A step of the benchmark failed."""


@dataclass(frozen=True)
class Ran:
    """A finished child: wall seconds, CPU seconds (it and its children) and its output."""

    seconds: float
    cpu: float
    stdout: str


@dataclass(frozen=True)
class Watched:
    """A finished flowsafe child watched from outside."""

    seconds: float
    cpu: float  # user + system seconds of flowsafe and all its children
    stdout: str
    peak_rss: int  # bytes, the last VmHWM seen
    phases: dict[str, float]  # phase -> seconds, in order


@dataclass
class Report:
    """Figures (name, value, target, command key) and the commands that produced them."""

    work: Path
    rows: list[tuple[str, str, str, str]] = field(default_factory=list)
    commands: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    loads: list[tuple[str, float]] = field(default_factory=list)

    def load(self, label: str) -> None:
        """Note the 1-minute load average now (other jobs on the machine skew timings)."""
        self.loads.append((label, os.getloadavg()[0]))

    def command(self, argv: Sequence[str] | str) -> str:
        """Register a command line (paths shown relative to $WORK); returns its key."""
        text = argv if isinstance(argv, str) else shlex.join(argv)
        text = text.replace(str(self.work), "$WORK").replace(sys.executable, ".venv/bin/python")
        for key, known in self.commands.items():
            if known == text:
                return key
        key = f"C{len(self.commands) + 1}"
        self.commands[key] = text
        return key

    def add(self, name: str, value: str, target: str = "", command: str = "") -> None:
        self.rows.append((name, value, target, command))
        print(f"  {name}: {value}" + (f" (target {target})" if target else ""), flush=True)


@dataclass(frozen=True)
class Bench:
    """One run's settings and shared places."""

    scale: float
    nights: int
    nights_scale: float
    work: Path
    server: PrivateServer
    report: Report


# --- small helpers ------------------------------------------------------------------------


def mb(value: float) -> str:
    return f"{value / MB:,.1f} MB"


def verdict(ok: bool) -> str:
    return "met" if ok else "MISSED"


def tail(text: str, lines: int = 8) -> str:
    return " | ".join(line for line in text.strip().splitlines()[-lines:] if line.strip())


def du_bytes(path: Path) -> int:
    """``du -sb`` of a folder."""
    done = subprocess.run(["du", "-sb", str(path)], capture_output=True, text=True, check=True,
                          timeout=RUN_LIMIT)
    return int(done.stdout.split()[0])


def tree_sizes(root: Path) -> dict[str, tuple[int, int]]:
    """Every regular file below ``root``: relative path -> (size, mtime_ns)."""
    found: dict[str, tuple[int, int]] = {}
    for folder, _dirs, files in os.walk(root):
        for name in files:
            path = os.path.join(folder, name)
            st = os.stat(path, follow_symlinks=False)
            found[os.path.relpath(path, root)] = (st.st_size, st.st_mtime_ns)
    return found


def children_cpu() -> float:
    """User + system seconds of every reaped child so far (children run one at a time)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def kill_group(process: subprocess.Popen[bytes]) -> None:
    """Kill a child started in its own session, with everything it started."""
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
    process.wait()


def run(argv: Sequence[str], *, env: Mapping[str, str] | None = None,
        stdout: int | IO[bytes] = subprocess.PIPE) -> Ran:
    """Run a child to completion (its own session, killed on error or timeout), timed."""
    started, cpu = time.monotonic(), children_cpu()
    process = subprocess.Popen(list(argv), stdout=stdout, stderr=subprocess.PIPE,
                               env=dict(env) if env is not None else None,
                               start_new_session=True)
    try:
        out, err = process.communicate(timeout=RUN_LIMIT)
    except BaseException:
        kill_group(process)
        raise
    seconds = time.monotonic() - started
    if process.returncode != 0:
        raise BenchError(f"{shlex.join(argv)} exited {process.returncode}: "
                         f"{tail(err.decode('utf-8', 'replace'))}")
    return Ran(seconds, children_cpu() - cpu, out.decode("utf-8", "replace") if out else "")


def shell(script: str) -> Ran:
    """A bash pipeline (``pipefail``), timed."""
    return run(["bash", "-o", "pipefail", "-c", script])


# --- watching flowsafe --------------------------------------------------------------------


def vm_hwm(pid: int) -> int:
    """The process's peak resident set (bytes), 0 once it is gone."""
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0
    for line in text.splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    return 0


def child_pids(pid: int) -> list[int]:
    """Direct children of ``pid`` (from every thread's ``children`` list)."""
    found: list[int] = []
    try:
        for task in Path(f"/proc/{pid}/task").iterdir():
            found += [int(p) for p in (task / "children").read_text().split()]
    except OSError:
        pass
    return found


def child_kind(pid: int) -> str | None:
    """'dump' for mariadb-dump, 'restic' for ``restic backup``, else None."""
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return None
    program = os.path.basename(argv[0].decode("utf-8", "replace"))
    if program == "mariadb-dump":
        return "dump"
    if program == "restic" and b"backup" in argv:
        return "restic"
    return None


def phases(total: float, seen: Mapping[str, tuple[float, float]]) -> dict[str, float]:
    """Split a run into start, dump+split, scan+manifest, restic backup and finish."""
    if "dump" not in seen or "restic" not in seen:
        return {}
    dump, restic = seen["dump"], seen["restic"]
    return {
        "start (config, site, versions, lock)": dump[0],
        "dump + split (mariadb-dump running)": dump[1] - dump[0],
        "scan + manifest": restic[0] - dump[1],
        "restic backup (restic running)": restic[1] - restic[0],
        "finish (snapshot id, cleanup, exit)": total - restic[1],
    }


def brief(watched: Watched) -> str:
    """'dump + split 1.0 s, restic 2.0 s' from a watched run's phases."""
    return ", ".join(f"{name.split(' (')[0]} {seconds:.1f} s"
                     for name, seconds in watched.phases.items())


def watch(argv: Sequence[str], env: Mapping[str, str], folder: Path) -> Watched:
    """Run flowsafe, polling its VmHWM and children every POLL_SECONDS."""
    with (open(folder / "stdout", "w+b") as out,
          open(folder / "stderr", "w+b") as err):
        started, cpu = time.monotonic(), children_cpu()
        process = subprocess.Popen(list(argv), stdout=out, stderr=err, env=dict(env),
                                   start_new_session=True)
        peak = 0
        seen: dict[str, tuple[float, float]] = {}
        try:
            while process.poll() is None:
                now = time.monotonic() - started
                if now > RUN_LIMIT:
                    raise BenchError(f"{shlex.join(argv)} ran longer than {RUN_LIMIT:.0f} s")
                peak = max(peak, vm_hwm(process.pid))
                for child in child_pids(process.pid):
                    kind = child_kind(child)
                    if kind is not None:
                        seen[kind] = (seen.get(kind, (now, now))[0], now)
                time.sleep(POLL_SECONDS)
        except BaseException:
            kill_group(process)
            raise
        seconds = time.monotonic() - started
        out.seek(0)
        err.seek(0)
        stdout = out.read().decode("utf-8", "replace")
        stderr = err.read().decode("utf-8", "replace")
    if process.returncode != 0:
        raise BenchError(f"{shlex.join(argv)} exited {process.returncode}: {tail(stderr)}")
    return Watched(seconds, children_cpu() - cpu, stdout, peak, phases(seconds, seen))


# --- flowsafe, restic and mariadb-dump command lines ---------------------------------------


@dataclass(frozen=True)
class Flowsafe:
    """One flowsafe config (site, repository, state) driven through the CLI."""

    config: Path
    repo: Path
    env: Mapping[str, str]

    def argv(self, *args: str) -> list[str]:
        return [sys.executable, "-m", "flowsafe", "--config", str(self.config), *args]

    def tables(self, snapshot: str) -> dict[str, tuple[int, str]]:
        """table -> (bytes, sha256) from a snapshot's manifest (read with plain restic)."""
        env = restic_env(self.repo, self.config.parent / "default.password",
                         self.config.parent.parent / "bench-cache")
        staging = self.config.parent.parent / "state" / "staging" / SITE_NAME
        raw = run(["restic", "--no-lock", "dump", snapshot, str(staging / "manifest.json")],
                  env=env).stdout
        entries = json.loads(raw)["database"]["tables"]
        return {str(t["name"]): (int(t["bytes"]), str(t["sha256"])) for t in entries}


def flowsafe_env() -> dict[str, str]:
    return {**os.environ, "COLUMNS": "200"}


def flowsafe_init(bench: Bench, site: SampleSite, folder: Path) -> tuple[Flowsafe, Ran]:
    """``flowsafe init`` of ``site`` into a fresh repository under ``folder``."""
    fs = Flowsafe(folder / "etc" / "flowsafe.toml", folder / "repo", flowsafe_env())
    argv = fs.argv("init", "--site", str(site.path), "--name", SITE_NAME, "--repo",
                   str(fs.repo), "--state-dir", str(folder / "state"),
                   "--db-socket", bench.server.socket)
    return fs, run(argv, env=fs.env)


def backup_json(watched: Watched) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(watched.stdout)
    return data


def defaults_file(bench: Bench, site: SampleSite) -> Path:
    """A 0600 ``[client]`` option file with the site's database account."""
    path = bench.work / "client.cnf"
    target = DbTarget(database=site.database, socket=bench.server.socket, user=site.db_user,
                      password=Secret(site.db_password))
    write_private(path, option_file_text(target))
    return path


def restic_env(repo: Path, password: Path, cache: Path) -> dict[str, str]:
    return {**os.environ, "RESTIC_REPOSITORY": str(repo), "RESTIC_PASSWORD_FILE": str(password),
            "RESTIC_CACHE_DIR": str(cache)}


# --- the steps ----------------------------------------------------------------------------


def build(bench: Bench, folder: str, database: str, scale: float) -> tuple[SampleSite, float]:
    """A sample site at ``scale`` under ``$WORK/folder``, and how long it took."""
    started = time.monotonic()
    site = build_site(bench.work / folder / "itflow", bench.server.target(), database=database,
                      seed=SEED, scale=scale)
    return site, time.monotonic() - started


def timing(ran: Ran | Watched) -> str:
    return f"{ran.seconds:.1f} s (CPU {ran.cpu:.1f} s)"


def plain_dump(bench: Bench, site: SampleSite, into: Path | None) -> tuple[Ran, str]:
    """Plain ``mariadb-dump --single-transaction`` into a file or /dev/null; command key."""
    cnf = defaults_file(bench, site)
    argv = ["mariadb-dump", f"--defaults-extra-file={cnf}", "--single-transaction",
            site.database]
    with open(into or os.devnull, "wb") as out:
        dump = run(argv, stdout=out)
    return dump, bench.report.command(f"{shlex.join(argv)} > {into or '/dev/null'}")


def plain_restic(bench: Bench, site: SampleSite, name: str, paths: Sequence[Path]
                 ) -> tuple[Ran, Ran, str]:
    """restic init (format 2) + backup of ``paths`` with flowsafe's restic flags into a fresh
    repository ``$WORK/name/repo``: (init, backup, command key)."""
    folder = bench.work / name
    password = folder / "password"
    write_private(password, "benchmark-baseline\n")
    env = restic_env(folder / "repo", password, folder / "cache")
    init = run(["restic", "init", "--repository-version", "2"], env=env)
    excludes = [f"--exclude={p}" for p in restic_excludes(site.path, list(DEFAULT_EXCLUDES))]
    argv = ["restic", "backup", "--json", "--compression", "auto", *excludes,
            *(str(p) for p in paths)]
    backup = run(argv, env=env)
    shutil.rmtree(folder)
    return init, backup, bench.report.command(
        f"RESTIC_REPOSITORY=$WORK/{name}/repo {shlex.join(argv)} > /dev/null")


def baseline(bench: Bench, site: SampleSite) -> tuple[Ran, Ran]:
    """The brief's baseline: dump to /dev/null + restic backup of the tree."""
    report = bench.report
    dump, key = plain_dump(bench, site, None)
    report.add("Baseline: plain mariadb-dump > /dev/null", timing(dump), "", key)
    init, backup, key = plain_restic(bench, site, "baseline", [site.path])
    report.add("Baseline: restic init", timing(init), "",
               report.command("restic init --repository-version 2"))
    report.add("Baseline: plain restic backup of the site tree", timing(backup), "", key)
    return dump, backup


def baseline_stored(bench: Bench, site: SampleSite) -> tuple[Ran, Ran]:
    """Baseline B, which stores the dump too: dump to a file, one restic of file + tree."""
    report = bench.report
    into = bench.work / "plain-dump" / f"{site.database}.sql"
    into.parent.mkdir()
    dump, key = plain_dump(bench, site, into)
    report.add("Baseline B: plain mariadb-dump > file",
               f"{timing(dump)}; {mb(into.stat().st_size)}", "", key)
    _init, backup, key = plain_restic(bench, site, "baseline-b", [into.parent, site.path])
    report.add("Baseline B: plain restic backup of dump file + site tree", timing(backup), "",
               key)
    shutil.rmtree(into.parent)
    return dump, backup


def ratio(watched: Watched, steps: tuple[Ran, Ran]) -> str:
    """flowsafe / (sum of the steps), in wall time and in CPU time."""
    wall = watched.seconds / sum(step.seconds for step in steps)
    cpu = watched.cpu / sum(step.cpu for step in steps)
    return f"{wall:.2f} (CPU time: {cpu:.2f})"


def first_backup(bench: Bench, site: SampleSite, plain: tuple[Ran, Ran],
                 stored: tuple[Ran, Ran]) -> tuple[Flowsafe, int, str]:
    """flowsafe init + backup against the baselines; returns config, dump bytes, snapshot."""
    report = bench.report
    fs, init = flowsafe_init(bench, site, bench.work / "flowsafe")
    report.add("flowsafe init", timing(init), "",
               report.command(fs.argv("init", "--site", "$SITE", "...")))
    argv = fs.argv("backup", "--json")
    watched = watch(argv, fs.env, bench.work)
    result = backup_json(watched)
    key = report.command(argv)
    wall = watched.seconds / sum(step.seconds for step in plain)
    report.add("flowsafe backup (first, fresh repository)", timing(watched), "", key)
    for name, seconds in watched.phases.items():
        report.add(f"... phase: {name}", f"{seconds:.1f} s", "", key + " (watched)")
    report.add("Ratio flowsafe backup / (dump + restic backup)",
               f"{ratio(watched, plain)} ({verdict(wall <= TARGET_RATIO)})",
               f"<= {TARGET_RATIO}", key)
    report.add("Ratio flowsafe backup / baseline B (which also stores the dump)",
               ratio(watched, stored), "", key)
    report.add("flowsafe process peak RSS (VmHWM, first backup)",
               f"{mb(watched.peak_rss)} ({verdict(watched.peak_rss <= TARGET_RSS)})",
               f"<= {mb(TARGET_RSS)}", key + " (watched)")
    report.add("Dump size (flowsafe's split dump, dump_bytes)", mb(result["dump_bytes"]), "", key)
    report.add("Bytes read / added to the repository", f"{mb(result['bytes_read'])} / "
               f"{mb(result['bytes_added'])}", "", key)
    report.add("Repository after the first backup", mb(du_bytes(fs.repo)), "",
               report.command("du -sb $WORK/flowsafe/repo"))
    return fs, int(result["dump_bytes"]), str(result["snapshot_id"])


def new_upload_bytes(before: Mapping[str, tuple[int, int]],
                     after: Mapping[str, tuple[int, int]]) -> tuple[int, int, int]:
    """(bytes of new files under uploads/, count of them, bytes of other new/changed files)."""
    uploads = count = other = 0
    for rel, (size, mtime) in after.items():
        if rel not in before:
            if rel.startswith("uploads/"):
                uploads += size
                count += 1
            else:
                other += size
        elif before[rel] != (size, mtime):
            other += size
    return uploads, count, other


def changed_tables(fs: Flowsafe, before: str, after: str) -> str:
    """Which dump tables differ between two snapshots, and their share of the dump."""
    old, new = fs.tables(before), fs.tables(after)
    changed = sorted((name for name in new if old.get(name) != new[name]),
                     key=lambda name: -new[name][0])
    size = sum(new[name][0] for name in changed)
    total = sum(b for b, _ in new.values())
    shown = ", ".join(f"{name} {mb(new[name][0])}" for name in changed[:6])
    more = f", +{len(changed) - 6} more" if len(changed) > 6 else ""
    return (f"{len(changed)} of {len(new)} tables, {mb(size)} = {100.0 * size / total:.0f} % "
            f"of the dump ({shown}{more})")


def realistic_night(bench: Bench, site: SampleSite, fs: Flowsafe, dump_bytes: int,
                    first: str) -> str:
    """nightly_change(day=1) then a second backup: added minus new uploads, % of the dump."""
    report = bench.report
    before = tree_sizes(site.path)
    repo_before = du_bytes(fs.repo)
    started = time.monotonic()
    nightly_change(site, bench.server.target(), day=1, row_fraction=0.01, new_uploads=10)
    changed = time.monotonic() - started
    uploads, count, other = new_upload_bytes(before, tree_sizes(site.path))
    argv = fs.argv("backup", "--json")
    watched = watch(argv, fs.env, bench.work)
    result = backup_json(watched)
    added = int(result["bytes_added"])
    share = 100.0 * (added - uploads) / dump_bytes
    key = report.command(argv)
    grown = du_bytes(fs.repo) - repo_before
    report.add("nightly_change(day=1, row_fraction=0.01, new_uploads=10)",
               f"{changed:.1f} s; {count} new uploads, {mb(uploads)}; other files changed "
               f"{mb(other)}", "", report.command("flowsafe.sample.nightly_change(...)"))
    report.add("Second backup: time / peak RSS", f"{watched.seconds:.1f} s / "
               f"{mb(watched.peak_rss)} ({brief(watched)})", "", key)
    report.add("Second backup: bytes_added", mb(added), "", key)
    report.add("Second backup: (bytes_added - new uploads) / dump",
               f"{share:.2f} % ({verdict(share <= TARGET_ADDED)})", f"<= {TARGET_ADDED:.0f} %",
               key)
    report.add("Second backup: repository growth (compressed, du -sb)", mb(grown), "",
               report.command("du -sb $WORK/flowsafe/repo"))
    report.add("Second backup: dump tables whose content changed",
               changed_tables(fs, first, str(result["snapshot_id"])), "",
               report.command("restic dump <snapshot> <staging>/manifest.json"))
    return str(result["snapshot_id"])


def big_text_columns(target: DbTarget, database: str) -> list[tuple[str, str, int]]:
    """(table, first TEXT column, data bytes) of tables holding >= BIG_TABLE_SHARE of data."""
    with connect(target) as conn, conn.cursor() as cur:
        cur.execute("SELECT TABLE_NAME, DATA_LENGTH FROM information_schema.TABLES "
                    "WHERE TABLE_SCHEMA = %s AND TABLE_TYPE = 'BASE TABLE'", (database,))
        sizes = {str(name): int(size) for name, size in cur.fetchall()}
        total = sum(sizes.values()) or 1
        found = []
        for table, size in sorted(sizes.items(), key=lambda item: -item[1]):
            if size < BIG_TABLE_SHARE * total:
                continue
            cur.execute("SELECT COLUMN_NAME FROM information_schema.COLUMNS WHERE "
                        "TABLE_SCHEMA = %s AND TABLE_NAME = %s AND DATA_TYPE IN %s "
                        "ORDER BY ORDINAL_POSITION LIMIT 1", (database, table, TEXT_TYPES))
            row = cur.fetchone()
            if row is not None:
                found.append((table, str(row[0]), size))
    return found


def adversarial_night(bench: Bench, site: SampleSite, fs: Flowsafe, dump_bytes: int,
                      second: str) -> None:
    """1 % of the rows of the big tables updated uniformly at random, then a backup."""
    report = bench.report
    repo_before = du_bytes(fs.repo)
    target = bench.server.target(site.database)
    updated: list[str] = []
    statements: list[str] = []
    with connect(target) as conn, conn.cursor() as cur:
        for table, column, _size in big_text_columns(bench.server.target(), site.database):
            sql = (f"UPDATE `{table}` SET `{column}` = CONCAT(COALESCE(`{column}`, ''), '.') "
                   "WHERE RAND() < 0.01")
            cur.execute(sql)
            statements.append(sql)
            updated.append(f"{table}.{column} ({cur.rowcount} rows)")
    argv = fs.argv("backup", "--json")
    watched = watch(argv, fs.env, bench.work)
    result = backup_json(watched)
    added = int(result["bytes_added"])
    share = 100.0 * added / dump_bytes
    key = report.command(argv)
    grown = du_bytes(fs.repo) - repo_before
    report.add("Adversarial: rows updated", "; ".join(updated), "",
               report.command("; ".join(statements[:1]) + "; ... (each big table)"))
    report.add("Adversarial: backup time / bytes_added", f"{watched.seconds:.1f} s / "
               f"{mb(added)} ({brief(watched)})", "", key)
    report.add("Adversarial: bytes_added / dump (information only)", f"{share:.2f} %", "", key)
    report.add("Adversarial: repository growth (compressed, du -sb)", mb(grown), "",
               report.command("du -sb $WORK/flowsafe/repo"))
    report.add("Adversarial: dump tables whose content changed",
               changed_tables(fs, second, str(result["snapshot_id"])), "",
               report.command("restic dump <snapshot> <staging>/manifest.json"))


def naive_night(site: SampleSite, cnf: Path, folder: Path, night: int) -> tuple[Ran, str]:
    """The naive nightly script: a gzipped dump and a tarball of the tree, both kept."""
    dump = (f"mariadb-dump --defaults-extra-file={shlex.quote(str(cnf))} --single-transaction "
            f"{shlex.quote(site.database)} | gzip > {shlex.quote(str(folder))}/db-{night}.sql.gz")
    tar = (f"tar czf {shlex.quote(str(folder))}/site-{night}.tar.gz "
           f"-C {shlex.quote(str(site.path.parent))} {shlex.quote(site.path.name)}")
    script = f"{dump} && {tar}"
    return shell(script), script


def nights(bench: Bench) -> None:
    """N nights at the small scale: flowsafe's repository against the naive copies."""
    report = bench.report
    site, built = build(bench, "www-nights", "itflow_nights", bench.nights_scale)
    stats = scan_tree(site.path, list(DEFAULT_EXCLUDES))
    report.add(f"Nightly sample (scale {bench.nights_scale:g}): build time",
               f"{built:.1f} s; tree {mb(stats.bytes)}, uploads {mb(stats.uploads_bytes)}", "",
               report.command(f"build_site(..., scale={bench.nights_scale:g})"))
    folder = bench.work / "nights"
    fs, _init = flowsafe_init(bench, site, folder)
    naive = folder / "naive"
    naive.mkdir()
    cnf = defaults_file(bench, site)
    flowsafe_seconds = naive_seconds = change_seconds = flowsafe_cpu = naive_cpu = 0.0
    peak = dump_bytes = 0
    argv = fs.argv("backup", "--reason", "nightly", "--json")
    script = ""
    for night in range(1, bench.nights + 1):
        if night in (1, (bench.nights + 1) // 2, bench.nights):
            report.load(f"night {night}")
        started = time.monotonic()
        nightly_change(site, bench.server.target(), day=night)
        change_seconds += time.monotonic() - started
        watched = watch(argv, fs.env, bench.work)
        flowsafe_seconds += watched.seconds
        flowsafe_cpu += watched.cpu
        peak = max(peak, watched.peak_rss)
        dump_bytes = int(backup_json(watched)["dump_bytes"])
        ran, script = naive_night(site, cnf, naive, night)
        naive_seconds += ran.seconds
        naive_cpu += ran.cpu
        print(f"  night {night}: flowsafe {watched.seconds:.1f} s, naive {ran.seconds:.1f} s",
              flush=True)
    repo, copies = du_bytes(fs.repo), du_bytes(naive)
    n = bench.nights
    key_fs, key_naive = report.command(argv), report.command(script.replace(
        f"-{n}.", "-$i."))
    report.add(f"Nightly sample: dump size after night {n}", mb(dump_bytes), "", key_fs)
    report.add(f"{n} nights: nightly_change total", f"{change_seconds:.1f} s", "",
               report.command("flowsafe.sample.nightly_change(site, ..., day=i)"))
    report.add(f"{n} nights: flowsafe backup time, total / mean",
               f"{flowsafe_seconds:.1f} s / {flowsafe_seconds / n:.1f} s "
               f"(CPU {flowsafe_cpu:.1f} s; peak RSS {mb(peak)})",
               "", key_fs)
    report.add(f"{n} nights: naive script time, total / mean",
               f"{naive_seconds:.1f} s / {naive_seconds / n:.1f} s (CPU {naive_cpu:.1f} s)", "",
               key_naive)
    report.add(f"{n} nights: flowsafe repository size", mb(repo), "",
               report.command("du -sb $WORK/nights/repo"))
    report.add(f"{n} nights: naive copies size", mb(copies), "",
               report.command("du -sb $WORK/nights/naive"))
    report.add("Ratio naive / flowsafe size", f"{copies / repo:.1f}", "", "")


def big_site(bench: Bench) -> None:
    """Steps 1 to 4 on the benchmark-scale sample; its folders are removed afterwards."""
    report = bench.report
    site, built = build(bench, "www", "itflow_bench", bench.scale)
    stats = scan_tree(site.path, list(DEFAULT_EXCLUDES))
    report.add(f"Benchmark sample (scale {bench.scale:g}): build time", f"{built:.1f} s", "",
               report.command(f"build_site(..., scale={bench.scale:g})"))
    report.add("Site tree backed up (uploads part)",
               f"{mb(stats.bytes)} in {stats.count} files ({mb(stats.uploads_bytes)} in "
               f"{stats.uploads_count} uploads)", "",
               report.command("flowsafe.scan.scan_tree($SITE, excludes)"))
    report.add("Database data on the server (InnoDB)", mb(data_length(bench, site.database)), "",
               report.command("SELECT SUM(DATA_LENGTH) FROM information_schema.TABLES ..."))
    report.load("before the baseline")
    plain = baseline(bench, site)
    stored = baseline_stored(bench, site)
    report.load("before the first flowsafe backup")
    fs, dump_bytes, first = first_backup(bench, site, plain, stored)
    report.load("after it")
    second = realistic_night(bench, site, fs, dump_bytes, first)
    adversarial_night(bench, site, fs, dump_bytes, second)
    shutil.rmtree(bench.work / "flowsafe")
    shutil.rmtree(site.path.parent)
    with connect(bench.server.target()) as conn, conn.cursor() as cur:
        cur.execute(f"DROP DATABASE `{site.database}`")


def data_length(bench: Bench, database: str) -> int:
    with connect(bench.server.target()) as conn, conn.cursor() as cur:
        cur.execute("SELECT SUM(DATA_LENGTH) FROM information_schema.TABLES "
                    "WHERE TABLE_SCHEMA = %s", (database,))
        row = cur.fetchone()
    return int(row[0]) if row and row[0] is not None else 0


# --- the report ---------------------------------------------------------------------------


def first_line(argv: Sequence[str]) -> str:
    try:
        done = subprocess.run(list(argv), capture_output=True, text=True, check=False, timeout=30)
    except OSError:
        return "not installed"
    return (done.stdout or done.stderr).strip().splitlines()[0]


def machine(server: PrivateServer) -> list[str]:
    """Cores, RAM, CPU, kernel and the versions of the tools involved."""
    meminfo = Path("/proc/meminfo").read_text().split()
    ram = int(meminfo[meminfo.index("MemTotal:") + 1]) * 1024
    cpu = next((line.split(":", 1)[1].strip() for line in
                Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), "unknown")
    return [
        f"CPU: {os.cpu_count()} cores ({cpu}); RAM {ram / 2**30:.1f} GiB",
        f"OS: {platform.system()} {platform.release()}; Python {platform.python_version()}",
        f"restic: {first_line(['restic', 'version'])}",
        f"MariaDB: server {server_version(server.target())} (private, started by the bench); "
        f"client {first_line(['mariadb-dump', '--version'])}",
        f"flowsafe {__version__}",
    ]


def cell(text: str) -> str:
    return text.replace("|", "\\|")


def render(bench: Bench, invocation: str, lines: list[str], minutes: float) -> str:
    report = bench.report
    out = [
        SECTION, "",
        f"Produced by `bench/backup.py` on {datetime.now(UTC):%Y-%m-%d %H:%M} UTC in "
        f"{minutes:.1f} minutes, with:", "",
        f"    {invocation}", "",
        "Machine:", "", *[f"- {line}" for line in lines],
        "- 1-minute load average during the run (this bench runs 1-2 busy processes; more "
        "means other jobs shared the machine): "
        + ", ".join(f"{label} {value:.1f}" for label, value in report.loads), "",
        "All on one private MariaDB started by the bench (fast settings: no doublewrite, "
        "no flush at commit); files and database were just written, so the page cache is "
        "warm for the baseline and flowsafe alike. Each figure is one run. `$WORK` is the "
        "bench's temp folder; `$SITE` the benchmark-scale site tree.", "",
        "| Figure | Value | Target | Command |",
        "|---|---|---|---|",
    ]
    out += [f"| {cell(n)} | {cell(v)} | {cell(t)} | {c} |" for n, v, t, c in report.rows]
    out += ["", "Commands:", ""]
    out += [f"- {key}: `` {text} ``" for key, text in report.commands.items()]
    if report.notes:
        out += ["", *report.notes]
    return "\n".join(out) + "\n"


def write_section(text: str) -> None:
    """Replace (or append) the section in BENCHMARKS.md, keeping any other section."""
    old = REPORT.read_text() if REPORT.exists() else "# Benchmarks\n"
    start = old.find(SECTION)
    if start < 0:
        new = old.rstrip("\n") + "\n\n" + text
    else:
        end = old.find("\n## ", start + len(SECTION))
        new = old[:start] + text + (old[end + 1:] if end >= 0 else "")
    REPORT.write_text(new)


NOTES = [
    "Notes:", "",
    "- Baseline B is not in the brief: the brief's baseline never stores the dump (it goes to "
    "/dev/null), so flowsafe's restic has the whole dump (compressible SQL) to chunk, hash and "
    "compress on top of the baseline's work. B dumps to a file and backs up file + tree in one "
    "restic run, which is the work flowsafe does.",
    "- The baseline restic backups use flowsafe's restic flags: repository format 2, "
    "`--compression auto`, `--json`, and the same exclusions as flowsafe (`uploads/tmp`, "
    "`uploads/backups`), so both back up the same files.",
    "- Phases come from watching the flowsafe process every 20 ms: `dump + split` is the "
    "lifetime of its mariadb-dump child (the split runs concurrently in flowsafe), "
    "`restic backup` the lifetime of its `restic backup` child.",
    "- Peak RSS is `VmHWM` of the flowsafe process only (its mariadb-dump and restic "
    "children are separate processes and not counted).",
    "- The second-backup figure subtracts the size of the new upload files (incompressible, "
    "restic stores them whole) from `bytes_added`; the remainder is the dump's changed "
    "chunks, the manifest and restic's tree metadata. `bytes_added` is restic 0.14's "
    "`data_added`, counted before compression; the repository growth (`du -sb`) is after it.",
    "- Where the second backup's bytes come from: a growing table's file changes at its start "
    "(the `AUTO_INCREMENT=` of its CREATE TABLE) and at its end (appended rows), and wherever "
    "an old row was updated; restic re-stores each chunk (512 KiB to 8 MiB, ~1 MiB on "
    "average) that holds a change. So a night costs about two chunks per growing table plus "
    "one per scattered update, whatever the table's size: a small sample (a few chunks per "
    "table) shows a far higher share than the benchmark scale.",
    "- The adversarial night puts a changed row every ~100 rows (tens of KB) of each big "
    "table, far denser than restic's ~1 MiB chunks: nearly every chunk of those tables "
    "changes and is stored again. No row grouping can avoid that; only smaller chunks "
    "could, and restic's chunk size is fixed.",
]


# --- main ---------------------------------------------------------------------------------


def parse(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.backup", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scale", type=float, default=BENCH_SCALE,
                        help=f"benchmark sample scale (default BENCH_SCALE = {BENCH_SCALE:g})")
    parser.add_argument("--nights", type=int, default=DEFAULT_NIGHTS,
                        help=f"nightly backups in step 5 (default {DEFAULT_NIGHTS})")
    parser.add_argument("--nights-scale", type=float, default=NIGHTS_SCALE,
                        help=f"scale of the nightly sample (default {NIGHTS_SCALE:g}: "
                             "a ~100 MB dump)")
    parser.add_argument("--workdir", type=Path, default=DEFAULT_WORKDIR,
                        help=f"where the run's temp folder goes (default {DEFAULT_WORKDIR})")
    parser.add_argument("--keep", action="store_true", help="keep the run's folder")
    parser.add_argument("--no-report", action="store_true", help="do not write BENCHMARKS.md")
    args = parser.parse_args(argv)
    if args.scale <= 0 or args.nights < 1 or args.nights_scale <= 0:
        parser.error("scales must be positive and --nights at least 1")
    return args


def step(name: str, action: Callable[[], None]) -> None:
    print(f"== {name}", flush=True)
    started = time.monotonic()
    action()
    print(f"   ({time.monotonic() - started:.1f} s)", flush=True)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse(sys.argv[1:] if argv is None else argv)
    os.environ["PATH"] = "/usr/sbin:/sbin:" + os.environ.get("PATH", "/usr/bin:/bin")
    nights_scale = float(args.nights_scale)
    invocation = shlex.join([".venv/bin/python", "-m", "bench.backup",
                             *(sys.argv[1:] if argv is None else argv)])
    args.workdir.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="run-", dir=args.workdir))
    started = time.monotonic()
    print(f"flowsafe backup benchmark in {work}", flush=True)
    try:
        with private_server(work) as server:
            bench = Bench(args.scale, args.nights, nights_scale, work, server, Report(work))
            lines = machine(server)
            step("benchmark-scale sample: baseline, first, second and adversarial backups",
                 lambda: big_site(bench))
            step(f"{args.nights} nights at scale {nights_scale:g}", lambda: nights(bench))
        bench.report.notes = NOTES
        text = render(bench, invocation, lines, (time.monotonic() - started) / 60)
        if not args.no_report:
            write_section(text)
            print(f"wrote {REPORT}", flush=True)
        else:
            print(text)
    finally:
        if args.keep:
            print(f"kept {work}", flush=True)
        else:
            shutil.rmtree(work, ignore_errors=True)
            with contextlib.suppress(OSError):
                args.workdir.rmdir()
    return 0


if __name__ == "__main__":
    sys.exit(main())
