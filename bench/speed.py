"""Benchmark of issue 12: restore, drill and backup against the fastest tools, written to
the "Speed (issue 12)" section of BENCHMARKS.md.

Run as ``.venv/bin/python -m bench.speed [--scale S] [--workdir DIR] [--keep]
[--no-report] [--no-borgmatic] [--no-tuned]`` (``make bench`` uses the defaults).

On the machine's own MariaDB (Debian's default settings, as production runs: every
autocommit flushes the log) and then once more on a tuned private server (no doublewrite,
no flush at commit), side by side in one run:

1. the benchmark-scale sample site (dump >= 1 GB, uploads >= 2 GB at BENCH_SCALE), its
   database owned by its own account with rights on that database only (the stock VM);
2. baselines: ``mariadb NEWDB < dump.sql`` of a single-file ``mariadb-dump``, and
   ``myloader -t CORES`` of a ``mydumper -t CORES --rows`` dump;
3. the by-hand backup (``mariadb-dump`` to a file, one ``restic backup`` of that file and
   the site tree, into a repository of its own), first and on an unchanged night, against
   ``flowsafe backup`` (``init`` with the site's own account: restores then use root over
   the socket, as on a stock VM);
4. ``flowsafe restore latest --db-only --yes --no-safety-backup --json`` (its JSON gives the
   time split), ``flowsafe drill latest --json --key-file K`` and ``flowsafe restore latest
   --yes --no-safety-backup --json`` (database and files);
5. borgmatic (PyPI, own venv) with borg (Debian's ``borgbackup``): ``borgmatic restore`` of
   the database + ``borgmatic extract`` of the tree, against flowsafe's full restore.

flowsafe's peak RSS (VmHWM of the flowsafe process) is watched in each. Every child is
waited for (killed on error or after ``RUN_LIMIT`` seconds), the databases and the account
made on the machine's server are dropped, the private server is stopped, and the run's
folder is removed at the end unless ``--keep``.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from bench.backup import plain_dump, watch_backup
from bench.common import (
    TARGET_RSS,
    Bench,
    Flowsafe,
    Ran,
    Report,
    SystemServer,
    build,
    common_args,
    data_length,
    defaults_file,
    du_bytes,
    flowsafe_init,
    invocation,
    machine,
    mb,
    publish,
    render,
    restic_env,
    run,
    sql,
    step,
    timing,
    verdict,
    watch,
    workspace,
)
from flowsafe.backup import restic_excludes
from flowsafe.itflow.site import DEFAULT_EXCLUDES
from flowsafe.mariadb.instance import private_server
from flowsafe.sample import SampleSite
from flowsafe.sample.site import default_db_user
from flowsafe.sample.sql import create_database
from flowsafe.scan import scan_tree
from flowsafe.secret import write_private

SECTION = "## Speed (issue 12)"
DATABASE = "fsbench_itflow"
BASELINE_DB = "fsbench_baseline"
CORES = str(os.cpu_count() or 2)
BORGMATIC_VERSION = "2.1.10"
TARGET_VS_MARIADB = 0.6
TARGET_VS_MYLOADER = 1.0
TARGET_DRILL = 1.5
TARGET_FIRST = 1.15
TARGET_NIGHT = 1.0
TARGET_BORG = 0.8


@dataclass(frozen=True)
class Loads:
    """The two baseline loads of one server."""

    mariadb: Ran
    myloader: Ran


def ratio(report: Report, name: str, value: float, target: float, key: str) -> None:
    report.add(name, f"{value:.2f} ({verdict(value <= target)})", f"<= {target:g}", key)


def drop(bench: Bench, database: str) -> None:
    sql(bench, f"DROP DATABASE IF EXISTS `{database}`")


# --- baselines ----------------------------------------------------------------------------


def single_file_dump(bench: Bench, site: SampleSite) -> Path:
    """A plain single-file mariadb-dump of the site database, kept for the loads."""
    into = bench.work / "plain-dump" / f"{site.database}.sql"
    into.parent.mkdir(exist_ok=True)
    dumped, key = plain_dump(bench, site, into)
    bench.report.add("Single-file mariadb-dump (information)",
                     f"{timing(dumped)}; {mb(into.stat().st_size)}", "", key)
    return into


def mariadb_load(bench: Bench, site: SampleSite, dump_file: Path, database: str) -> Ran:
    """``mariadb DATABASE < dump.sql`` as root over the socket, into a new database."""
    drop(bench, database)
    sql(bench, f"CREATE DATABASE `{database}`")
    argv = ["mariadb", f"--defaults-extra-file={defaults_file(bench, site, root=True)}",
            database]
    bench.report.load(f"before mariadb < dump.sql ({bench.label})")
    with open(dump_file, "rb") as source:
        loaded = run(argv, stdin=source)
    bench.report.add(f"Baseline: mariadb NEWDB < dump.sql ({bench.label})", timing(loaded), "",
                     bench.report.command(f"{shlex.join(argv)} < $WORK/plain-dump/dump.sql"))
    return loaded


def myloader_load(bench: Bench, site: SampleSite) -> Ran:
    """``mydumper -t CORES --rows N`` of the site database, then ``myloader -t CORES``."""
    report = bench.report
    folder = bench.work / "mydumper"
    shutil.rmtree(folder, ignore_errors=True)
    root = defaults_file(bench, site, root=True)
    dump_argv = ["mydumper", f"--defaults-file={root}", "-S", bench.server.socket,
                 "-B", site.database, "-t", CORES, "--rows", "100000", "-o", str(folder)]
    dumped = run(dump_argv)
    report.add(f"mydumper -t {CORES} --rows 100000 (information, {bench.label})",
               timing(dumped), "", report.command(dump_argv))
    drop(bench, BASELINE_DB)
    load_argv = ["myloader", f"--defaults-file={root}", "-S", bench.server.socket,
                 "-d", str(folder), "-B", BASELINE_DB, "-t", CORES]
    report.load(f"before myloader ({bench.label})")
    loaded = run(load_argv)
    report.add(f"Baseline: myloader -t {CORES} ({bench.label})", timing(loaded), "",
               report.command(load_argv))
    drop(bench, BASELINE_DB)
    shutil.rmtree(folder)
    return loaded


def baselines(bench: Bench, site: SampleSite, dump_file: Path) -> Loads:
    plain = mariadb_load(bench, site, dump_file, BASELINE_DB)
    drop(bench, BASELINE_DB)
    return Loads(plain, myloader_load(bench, site))


# --- backups ------------------------------------------------------------------------------


def by_hand_night(bench: Bench, site: SampleSite, folder: Path) -> Ran:
    """One by-hand night: mariadb-dump to a file, one restic backup of file + tree."""
    into = folder / "dump" / f"{site.database}.sql"
    into.parent.mkdir(parents=True, exist_ok=True)
    dumped, _key = plain_dump(bench, site, into)
    env = restic_env(folder / "repo", folder / "password", folder / "cache")
    excludes = [f"--exclude={p}" for p in restic_excludes(site.path, list(DEFAULT_EXCLUDES))]
    argv = ["restic", "backup", "--json", "--compression", "auto", *excludes,
            str(into.parent), str(site.path)]
    stored = run(argv, env=env)
    bench.report.command(f"RESTIC_REPOSITORY=$WORK/by-hand/repo {shlex.join(argv)}")
    return Ran(dumped.seconds + stored.seconds, dumped.cpu + stored.cpu, "")


def backups(bench: Bench, site: SampleSite) -> Flowsafe:
    """By-hand and flowsafe backups, first and unchanged night; the flowsafe config."""
    report = bench.report
    folder = bench.work / "by-hand"
    folder.mkdir()
    write_private(folder / "password", "benchmark-by-hand\n")
    run(["restic", "init", "--repository-version", "2"],
        env=restic_env(folder / "repo", folder / "password", folder / "cache"))
    report.load("before the by-hand first backup")
    hand_first = by_hand_night(bench, site, folder)
    report.add("By hand: mariadb-dump > file + restic backup (first)", timing(hand_first), "",
               report.command("mariadb-dump ... > $WORK/by-hand/dump/db.sql; restic backup "
                              "$WORK/by-hand/dump $SITE"))
    hand_night = by_hand_night(bench, site, folder)
    report.add("By hand: the same, unchanged night", timing(hand_night), "", "")
    shutil.rmtree(folder)
    fs, init, argv = flowsafe_init(bench, site, bench.work / "flowsafe")
    report.add("flowsafe init (the site's own account; restores use root over the socket)",
               f"{timing(init)}: {init.stdout.strip().splitlines()[-1] if init.stdout else ''}",
               "", report.command([("$SITE" if a == str(site.path) else a) for a in argv]))
    backup = fs.argv("backup", "--json")
    key = report.command(backup)
    for label, hand, target in (("first", hand_first, TARGET_FIRST),
                                ("unchanged night", hand_night, TARGET_NIGHT)):
        report.load(f"before the flowsafe backup ({label})")
        watched = watch_backup(backup, fs.env, bench.work)
        phases = ", ".join(f"{n.split(' (')[0]} {s:.1f} s" for n, s in watched.phases.items())
        report.add(f"flowsafe backup ({label})", f"{timing(watched)}; {phases}", "", key)
        ratio(report, f"Ratio flowsafe backup / by hand ({label})",
              watched.seconds / hand.seconds, target, key)
        report.add(f"flowsafe peak RSS (backup, {label})",
                   f"{mb(watched.peak_rss)} ({verdict(watched.peak_rss <= TARGET_RSS)})",
                   f"<= {mb(TARGET_RSS)}", key + " (watched)")
    return fs


# --- restores and the drill -----------------------------------------------------------------


def flowsafe_json(bench: Bench, fs: Flowsafe, argv: Sequence[str], label: str,
                  ok: tuple[int, ...] = (0,)) -> tuple[float, int, Any]:
    """Run flowsafe watched: (wall seconds, peak RSS, its JSON output)."""
    bench.report.load(f"before {label}")
    watched = watch(argv, fs.env, bench.work, ok=ok)
    return watched.seconds, watched.peak_rss, json.loads(watched.stdout)


def split_text(phases: dict[str, float]) -> str:
    return ", ".join(f"{name} {seconds:.1f} s" for name, seconds in phases.items())


def db_restore(bench: Bench, fs: Flowsafe, loads: Loads) -> float:
    report = bench.report
    argv = fs.argv("restore", "latest", "--db-only", "--yes", "--no-safety-backup", "--json")
    key = report.command(argv)
    seconds, rss, result = flowsafe_json(bench, fs, argv, f"the database restore ({bench.label})")
    report.add(f"flowsafe restore --db-only ({bench.label})", f"{seconds:.1f} s", "", key)
    report.add("... time split (from its JSON)", split_text(result.get("phases", {})), "", key)
    ratio(report, f"Ratio restore --db-only / mariadb < dump.sql ({bench.label})",
          seconds / loads.mariadb.seconds, TARGET_VS_MARIADB, key)
    ratio(report, f"Ratio restore --db-only / myloader -t {CORES} ({bench.label})",
          seconds / loads.myloader.seconds, TARGET_VS_MYLOADER, key)
    report.add(f"flowsafe peak RSS (database restore, {bench.label})",
               f"{mb(rss)} ({verdict(rss <= TARGET_RSS)})", f"<= {mb(TARGET_RSS)}", key)
    run(fs.argv("undo", "--purge", "--yes"), env=fs.env)
    return seconds


def drill(bench: Bench, fs: Flowsafe, site: SampleSite, restored: float) -> None:
    report = bench.report
    key_file = bench.work / "master.key"
    write_private(key_file, site.master_key + "\n")
    argv = fs.argv("drill", "latest", "--json", "--key-file", str(key_file))
    key = report.command(argv)
    seconds, rss, reports = flowsafe_json(bench, fs, argv, "the drill", ok=(0, 3))
    result = reports[0]
    checks = ", ".join(f"{c['name']} {float(c['seconds']):.1f} s" for c in result["checks"])
    report.add("flowsafe drill (every check, credentials too)",
               f"{seconds:.1f} s, verdict {'ok' if result['ok'] else 'FAILED'}; {checks}", "",
               key)
    ratio(report, "Ratio drill / restore --db-only (machine's server)", seconds / restored,
          TARGET_DRILL, key)
    report.add("flowsafe peak RSS (drill)", f"{mb(rss)} ({verdict(rss <= TARGET_RSS)})",
               f"<= {mb(TARGET_RSS)}", key)


def full_restore(bench: Bench, fs: Flowsafe) -> float:
    report = bench.report
    argv = fs.argv("restore", "latest", "--yes", "--no-safety-backup", "--json")
    key = report.command(argv)
    seconds, rss, result = flowsafe_json(bench, fs, argv, "the full restore")
    report.add("flowsafe restore, database + files", f"{seconds:.1f} s", "", key)
    report.add("... time split (from its JSON)", split_text(result.get("phases", {})), "", key)
    report.add("flowsafe peak RSS (full restore)", f"{mb(rss)} ({verdict(rss <= TARGET_RSS)})",
               f"<= {mb(TARGET_RSS)}", key)
    run(fs.argv("undo", "--purge", "--yes"), env=fs.env)
    return seconds


# --- borgmatic ----------------------------------------------------------------------------


BORGMATIC_CONFIG = """\
source_directories:
    - {site}
repositories:
    - path: {repo}
      label: bench
exclude_patterns:
{excludes}
encryption_passcommand: cat {passphrase}
compression: zstd,3
borg_base_directory: {base}
user_runtime_directory: {runtime}
user_state_directory: {state}
mariadb_databases:
    - name: {database}
      socket_path: {socket}
      username: {user}
      password: "{{credential file {db_password}}}"
"""


def borgmatic_setup(bench: Bench, site: SampleSite, folder: Path) -> list[str]:
    """borg (apt) and borgmatic (PyPI, own venv); the borgmatic argv prefix."""
    if shutil.which("borg") is None:
        run(["apt-get", "install", "-y", "borgbackup"])
    venv = folder / "venv"
    run([shutil.which("python3") or sys.executable, "-m", "venv", str(venv)])
    run([str(venv / "bin" / "pip"), "install", "-q", f"borgmatic=={BORGMATIC_VERSION}"])
    passphrase, db_password = folder / "passphrase", folder / "db.password"
    write_private(passphrase, "benchmark-borg-passphrase\n")
    write_private(db_password, site.db_password)
    config = folder / "borgmatic.yaml"
    write_private(config, BORGMATIC_CONFIG.format(
        site=site.path, repo=folder / "repo",
        excludes="\n".join(f"    - {site.path / rel}" for rel in DEFAULT_EXCLUDES),
        passphrase=passphrase, base=folder / "base", runtime=folder / "run",
        state=folder / "state", database=site.database, socket=bench.server.socket,
        user=site.db_user, db_password=db_password))
    return [str(venv / "bin" / "borgmatic"), "--config", str(config)]


def borgmatic(bench: Bench, site: SampleSite, flowsafe_full: float) -> None:
    """borgmatic create; DROP DATABASE; borgmatic restore; borgmatic extract of the tree."""
    report = bench.report
    folder = bench.work / "borgmatic"
    folder.mkdir()
    argv = borgmatic_setup(bench, site, folder)
    report.add("borgmatic / borg versions", f"borgmatic {BORGMATIC_VERSION}, "
               f"{run(['borg', '--version']).stdout.strip()}", "",
               report.command(f"pip install borgmatic=={BORGMATIC_VERSION}; "
                              "apt-get install -y borgbackup"))
    run([*argv, "repo-create", "--encryption", "repokey-blake2"])
    made = run([*argv, "create"])
    report.add("borgmatic create (information)", timing(made), "",
               report.command([*argv, "create"]))
    drop(bench, site.database)
    restore = [*argv, "restore", "--archive", "latest"]
    report.load("before borgmatic restore")
    restored = run(restore)
    destination = folder / "extract"
    destination.mkdir()
    extract = [*argv, "extract", "--archive", "latest", "--path", str(site.path).lstrip("/"),
               "--destination", str(destination)]
    extracted = run(extract)
    both = restored.seconds + extracted.seconds
    report.add("borgmatic restore (database, after DROP DATABASE) + extract (tree)",
               f"{restored.seconds:.1f} s + {extracted.seconds:.1f} s = {both:.1f} s", "",
               report.command(restore) + ", " + report.command(extract))
    ratio(report, "Ratio flowsafe full restore / borgmatic restore + extract",
          flowsafe_full / both, TARGET_BORG, "")
    shutil.rmtree(folder)


# --- the two servers --------------------------------------------------------------------


def describe(bench: Bench, site: SampleSite, built: float) -> None:
    report = bench.report
    stats = scan_tree(site.path, list(DEFAULT_EXCLUDES))
    report.add(f"Benchmark sample (scale {bench.scale:g}): build time", f"{built:.1f} s", "",
               report.command(f"build_site(..., scale={bench.scale:g})"))
    report.add("Site tree (uploads part)", f"{mb(stats.bytes)} in {stats.count} files "
               f"({mb(stats.uploads_bytes)} in {stats.uploads_count} uploads)", "",
               report.command("flowsafe.scan.scan_tree($SITE, excludes)"))
    report.add("Database data on the server (InnoDB)", mb(data_length(bench, site.database)), "",
               report.command("SELECT SUM(DATA_LENGTH) FROM information_schema.TABLES ..."))


def on_machine_server(bench: Bench, with_borgmatic: bool) -> tuple[SampleSite, Path]:
    """Everything on the machine's own server; returns the site and its single-file dump."""
    site, built = build(bench, "www", DATABASE, bench.scale)
    describe(bench, site, built)
    dump_file = single_file_dump(bench, site)
    loads = baselines(bench, site, dump_file)
    fs = backups(bench, site)
    restored = db_restore(bench, fs, loads)
    drill(bench, fs, site, restored)
    full = full_restore(bench, fs)
    report_size = du_bytes(fs.repo)
    bench.report.add("flowsafe repository size", mb(report_size), "",
                     bench.report.command("du -sb $WORK/flowsafe/repo"))
    shutil.rmtree(bench.work / "flowsafe")
    if with_borgmatic:
        borgmatic(bench, site, full)
    return site, dump_file


def on_tuned_server(bench: Bench, site: SampleSite, dump_file: Path) -> None:
    """The same database on the tuned private server: baselines and the database restore.

    The site tree is hard-linked (same files, no copy); its database is loaded from the
    single-file dump (that load is the ``mariadb < dump.sql`` baseline here).
    """
    tree = bench.work / "tuned" / "itflow"
    tree.parent.mkdir()
    run(["cp", "-al", str(site.path), str(tree)])
    here = replace(site, path=tree)
    create_database(bench.server.target(), site.database, site.db_user, site.db_password)
    plain = mariadb_load(bench, here, dump_file, site.database)
    loads = Loads(plain, myloader_load(bench, here))
    fs, _init, _argv = flowsafe_init(bench, here, bench.work / "tuned" / "flowsafe")
    run(fs.argv("backup", "--json"), env=fs.env)
    db_restore(bench, fs, loads)


@contextmanager
def machine_server(work: Path) -> Iterator[SystemServer]:
    """The machine's MariaDB; the bench's databases and account dropped at the end."""
    server = SystemServer.local()
    try:
        yield server
    finally:
        cleanup = Bench(0, work, server, Report(work), "cleanup")
        for database in (DATABASE, BASELINE_DB):
            drop(cleanup, database)
        sql(cleanup, f"DROP USER IF EXISTS '{default_db_user(DATABASE)}'@'localhost'")


NOTES = [
    "Notes:", "",
    "- The machine's server is Debian's MariaDB with its default settings "
    "(`innodb_flush_log_at_trx_commit=1`, 128 MB buffer pool): what production runs. The "
    "tuned server is a private one flowsafe starts for drills (no doublewrite, no flush at "
    "commit); the drill always loads into such a server, never into production.",
    "- `restore --db-only` is the whole command from start to exit: config, manifest and "
    "signature, plan, `restic dump` of the database folder streamed as a tar into the "
    "checked loader (every chunk's SHA-256 against the manifest, one statement per query, "
    "rows chunks over several sessions, one commit per chunk, secondary indexes after the "
    "rows), the checks of every table, the atomic swap and the run record. "
    "`--no-safety-backup` leaves out the pre-restore backup (a backup, measured above).",
    "- Baselines load from a plain folder or file already on local disk, in the page cache, "
    "check nothing and swap nothing in; flowsafe reads from its encrypted, deduplicated, "
    "compressed repository.",
    "- The by-hand backup is `mariadb-dump` (default options, `--single-transaction`) to a "
    "file, then one `restic backup` of that file and the site tree with flowsafe's "
    "exclusions, into a repository of its own.",
    "- Peak RSS is `VmHWM` of the flowsafe process (its restic and MariaDB children are "
    "separate processes).",
]


def parse(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.speed", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    common_args(parser)
    parser.add_argument("--no-borgmatic", action="store_true",
                        help="skip the borgmatic comparison")
    parser.add_argument("--no-tuned", action="store_true",
                        help="skip the tuned private server")
    args = parser.parse_args(argv)
    if args.scale <= 0:
        parser.error("--scale must be positive")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse(sys.argv[1:] if argv is None else argv)
    command = invocation("bench.speed", argv)
    started = time.monotonic()
    with workspace(args.workdir, args.keep, "speed") as work, machine_server(work) as local:
        report = Report(work)
        bench = Bench(args.scale, work, local, report, "machine's server")
        lines = machine(local)
        found: list[tuple[SampleSite, Path]] = []
        step("the machine's MariaDB (Debian defaults)",
             lambda: found.append(on_machine_server(bench, not args.no_borgmatic)))
        if not args.no_tuned:
            with private_server(work / "tuned-server") as tuned:
                lines.append(f"Tuned server: {machine(tuned)[3].split(': ', 1)[1]}")
                step("the tuned private server", lambda: on_tuned_server(
                    Bench(args.scale, work, tuned, report, "tuned server"), *found[0]))
        report.notes = [*NOTES, *report.notes]
        text = render(report, section=SECTION, script="bench/speed.py", invocation=command,
                      lines=lines, minutes=(time.monotonic() - started) / 60,
                      about="Each figure is one run; `$WORK` is the bench's temp folder, "
                            "`$SITE` the benchmark-scale site tree.")
        publish(SECTION, text, args.no_report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
