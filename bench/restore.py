"""Benchmark of ``flowsafe restore`` (issue 3), written to the "Restore (issue 3)" section
of BENCHMARKS.md.

Run as ``.venv/bin/python -m bench.restore [--scale S] [--workdir DIR] [--keep]
[--no-report] [--no-borgmatic]`` (``make bench`` uses the defaults). Everything runs in
one process on one private MariaDB started here, side by side:

1. build the benchmark-scale sample site (dump >= 1 GB, uploads >= 2 GB at BENCH_SCALE);
2. baseline: a single-file ``mariadb-dump --single-transaction`` (default options) of the
   site database, loaded with ``mariadb NEWDB < dump.sql`` into a fresh database (the
   load is timed);
3. ``flowsafe init --db-user root`` + ``flowsafe backup``, then
   ``flowsafe restore latest --db-only --yes --no-safety-backup --jobs 2`` watched every
   20 ms (its ``restic restore`` and ``mariadb`` children give the phases), against the
   baseline load;
4. ``flowsafe restore latest --yes --no-safety-backup`` (database + files): wall time and
   the flowsafe process's peak RSS (``VmHWM``, children not counted);
5. borgmatic (from PyPI, in a virtualenv under the run's folder) with borg (Debian's
   ``borgbackup``): the same site tree and database (its ``mariadb_databases`` hook),
   ``borgmatic restore`` of the database (dropped first) + ``borgmatic extract`` of the
   site tree, against flowsafe's full restore.

Every child is waited for (killed on error or after ``RUN_LIMIT`` seconds), the MariaDB
server is stopped, and the run's folder is removed at the end unless ``--keep``.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

from bench.common import (
    SAME_SERVER,
    TARGET_RSS,
    Bench,
    BenchError,
    Flowsafe,
    Ran,
    Report,
    Watched,
    brief,
    build,
    common_args,
    data_length,
    defaults_file,
    du_bytes,
    flowsafe_init,
    invocation,
    machine,
    mb,
    program,
    publish,
    render,
    run,
    sql,
    step,
    timing,
    verdict,
    watch,
    workspace,
)
from flowsafe.itflow.site import DEFAULT_EXCLUDES
from flowsafe.mariadb.connection import connect
from flowsafe.mariadb.instance import private_server
from flowsafe.sample import SampleSite
from flowsafe.scan import scan_tree
from flowsafe.secret import write_private

SECTION = "## Restore (issue 3)"
DATABASE = "itflow_bench"
BASELINE_DB = "itflow_baseline"
TARGET_DB_RATIO = 0.6
BORGMATIC_VERSION = "2.1.10"
JOBS = "2"

# child kind -> phase label; then what flowsafe does between that kind's end and the next
LABELS = {
    "restic db": "restic restore of the dump files (restic running)",
    "load": "load (mariadb clients running)",
    "restic files": "restic restore of the site tree (restic running)",
    "safety": "pre-restore backup (restic backup running)",
}
AFTER = {
    "restic db": "create the scratch database",
    "load": "verify row counts against the manifest",
    "restic files": "carry over excluded folders",
    "safety": "plan the restore",
}


def restore_kind(argv: list[bytes]) -> str | None:
    """The kind of a child of ``flowsafe restore``."""
    name = program(argv)
    if name == "mariadb":
        return "load"
    if name == "restic" and b"restore" in argv:
        return "restic db" if any(arg.endswith(b"/db") for arg in argv) else "restic files"
    if name in ("restic", "mariadb-dump") and b"backup" in argv:
        return "safety"
    return None


def restore_phases(total: float, seen: Mapping[str, tuple[float, float]]) -> dict[str, float]:
    """start, then each kind's span and what came after it, up to the exit."""
    if not seen:
        return {}
    order = sorted(seen, key=lambda kind: seen[kind][0])
    out = {"start (config, plan, lock)": seen[order[0]][0]}
    for index, kind in enumerate(order):
        first, last = seen[kind]
        out[LABELS[kind]] = last - first
        following = seen[order[index + 1]][0] if index + 1 < len(order) else total
        label = AFTER[kind] if index + 1 < len(order) else f"{AFTER[kind]}, swap, exit"
        out[label] = max(0.0, following - last)
    return out


def with_jobs(argv: Sequence[str], jobs: str) -> list[str]:
    """``argv`` with ``--jobs jobs`` (replacing any ``--jobs``)."""
    out = list(argv)
    if "--jobs" in out:
        out[out.index("--jobs") + 1] = jobs
    else:
        out += ["--jobs", jobs]
    return out


def jobs_of(argv: Sequence[str]) -> str:
    """The ``--jobs`` of a flowsafe argv (flowsafe's default: the number of cores)."""
    return argv[argv.index("--jobs") + 1] if "--jobs" in argv else f"{os.cpu_count()} (default)"


def failure(text: str) -> str:
    """The MariaDB error line of a failed run, else its tail."""
    found = re.search(r"ERROR \d+ .*", text)
    return (found.group(0) if found else text[-300:]).replace("`", "'")


def watch_restore(bench: Bench, argv: Sequence[str], env: Mapping[str, str]
                  ) -> tuple[Watched, list[str]]:
    """Run a restore, watched: (the run, the argv that succeeded).

    A failed run is noted in the report and run again once with ``--jobs 1`` (flowsafe
    removes a failed restore's leftovers itself): ``--jobs 2`` can fail, see the notes.
    """
    tries = [list(argv)] if with_jobs(argv, "1") == list(argv) else [list(argv),
                                                                    with_jobs(argv, "1")]
    for attempt, args in enumerate(tries, 1):
        started = time.monotonic()
        try:
            return watch(args, env, bench.work, restore_kind, restore_phases), args
        except BenchError as exc:
            why = failure(str(exc))
            key = bench.report.command(args)
            bench.report.add(f"FAILED: {key}", f"exit 1 after {time.monotonic() - started:.1f} s: "
                             f"{why}", "", key)
            bench.report.notes.append(
                f"- FAILED: `{bench.report.commands[key]}` exited 1 after "
                f"{time.monotonic() - started:.1f} s: {why}"
                + (" (run again with `--jobs 1`)" if attempt < len(tries) else ""))
            if attempt == len(tries):
                raise
    raise AssertionError("unreachable")


def load_span(watched: Watched) -> float | None:
    span = watched.spans.get("load")
    return span[1] - span[0] if span else None


def table_count(bench: Bench, database: str) -> int:
    with connect(bench.server.target()) as conn, conn.cursor() as cur:
        cur.execute("SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = %s",
                    (database,))
        row = cur.fetchone()
    return int(row[0]) if row else 0


# --- the steps ----------------------------------------------------------------------------


def baseline(bench: Bench, site: SampleSite) -> Ran:
    """Single-file mariadb-dump, then ``mariadb NEWDB < dump.sql`` (the load is timed)."""
    report = bench.report
    dump_file = bench.work / "plain-dump" / f"{site.database}.sql"
    dump_file.parent.mkdir()
    cnf = defaults_file(bench, site)
    argv = ["mariadb-dump", f"--defaults-extra-file={cnf}", "--single-transaction",
            site.database]
    with open(dump_file, "wb") as out:
        dump = run(argv, stdout=out)
    report.add("Baseline: single-file mariadb-dump (not part of the ratio)",
               f"{timing(dump)}; {mb(dump_file.stat().st_size)}",
               "", report.command(f"{' '.join(argv)} > $WORK/plain-dump/{site.database}.sql"))
    sql(bench, f"CREATE DATABASE `{BASELINE_DB}`")
    root = defaults_file(bench, site, root=True)
    load_argv = ["mariadb", f"--defaults-extra-file={root}", BASELINE_DB]
    report.load("before the baseline load")
    with open(dump_file, "rb") as source:
        load = run(load_argv, stdin=source)
    report.add("Baseline: mariadb NEWDB < dump.sql (the load)", timing(load), "",
               report.command(f"{' '.join(load_argv)} < $WORK/plain-dump/{site.database}.sql"))
    report.add("... tables loaded", str(table_count(bench, BASELINE_DB)), "",
               report.command("information_schema.TABLES"))
    sql(bench, f"DROP DATABASE `{BASELINE_DB}`")
    shutil.rmtree(dump_file.parent)
    return load


def flowsafe_backup(bench: Bench, site: SampleSite) -> Flowsafe:
    report = bench.report
    fs, init, init_argv = flowsafe_init(bench, site, bench.work / "flowsafe", db_user="root")
    shown = [("$SITE" if arg == str(site.path) else arg) for arg in init_argv]
    report.add("flowsafe init (root over the socket, so restore may create databases)",
               timing(init), "", report.command(shown))
    argv = fs.argv("backup", "--json")
    report.load("before the flowsafe backup")
    backup = watch(argv, fs.env, bench.work)
    report.add("flowsafe backup (information: what is restored below)", timing(backup), "",
               report.command(argv))
    return fs


def purge(bench: Bench, fs: Flowsafe) -> None:
    """``undo --purge``: drop the rollback database and folder the restore kept."""
    run(fs.argv("undo", "--purge", "--yes"), env=fs.env)


def db_restore(bench: Bench, fs: Flowsafe, plain: Ran) -> Watched:
    report = bench.report
    argv = fs.argv("restore", "latest", "--db-only", "--yes", "--no-safety-backup",
                   "--jobs", JOBS)
    report.load("before the flowsafe database restore")
    watched, argv = watch_restore(bench, argv, fs.env)
    key = report.command(argv)
    ratio = watched.seconds / plain.seconds
    report.add(f"flowsafe restore --db-only --jobs {jobs_of(argv)} (wall)", timing(watched),
               "", key)
    for name, seconds in watched.phases.items():
        report.add(f"... phase: {name}", f"{seconds:.1f} s", "", key + " (watched)")
    report.add("Ratio flowsafe DB restore (whole command) / baseline load",
               f"{ratio:.2f} ({verdict(ratio <= TARGET_DB_RATIO)})", f"<= {TARGET_DB_RATIO}",
               key)
    loading = load_span(watched)
    if loading is not None:
        report.add("Ratio flowsafe load phase alone / baseline load",
                   f"{loading / plain.seconds:.2f}", "", key + " (watched)")
    report.add("flowsafe process peak RSS (VmHWM, DB restore)", mb(watched.peak_rss), "",
               key + " (watched)")
    purge(bench, fs)
    return watched


def full_restore(bench: Bench, fs: Flowsafe) -> Watched:
    report = bench.report
    argv = fs.argv("restore", "latest", "--yes", "--no-safety-backup")
    report.load("before the flowsafe full restore")
    watched, argv = watch_restore(bench, argv, fs.env)
    key = report.command(argv)
    report.add(f"flowsafe restore, database + files, --jobs {jobs_of(argv)} (wall)",
               timing(watched), "", key)
    for name, seconds in watched.phases.items():
        report.add(f"... phase: {name}", f"{seconds:.1f} s", "", key + " (watched)")
    report.add("flowsafe process peak RSS (VmHWM, full restore)",
               f"{mb(watched.peak_rss)} ({verdict(watched.peak_rss <= TARGET_RSS)})",
               f"<= {mb(TARGET_RSS)}", key + " (watched)")
    purge(bench, fs)
    return watched


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


def borgmatic_setup(bench: Bench, site: SampleSite, folder: Path) -> tuple[list[str], str]:
    """borg (apt) and borgmatic (PyPI, own venv); returns (borgmatic argv prefix, versions)."""
    if shutil.which("borg") is None:
        run(["apt-get", "install", "-y", "borgbackup"])
    python = shutil.which("python3") or sys.executable
    venv = folder / "venv"
    run([python, "-m", "venv", str(venv)])
    run([str(venv / "bin" / "pip"), "install", "-q", f"borgmatic=={BORGMATIC_VERSION}"])
    passphrase, db_password = folder / "passphrase", folder / "db.password"
    write_private(passphrase, "benchmark-borg-passphrase\n")
    write_private(db_password, site.db_password)
    excludes = "\n".join(f"    - {site.path / rel}" for rel in DEFAULT_EXCLUDES)
    config = folder / "borgmatic.yaml"
    write_private(config, BORGMATIC_CONFIG.format(
        site=site.path, repo=folder / "repo", excludes=excludes, passphrase=passphrase,
        base=folder / "base", runtime=folder / "run", state=folder / "state",
        database=site.database, socket=bench.server.socket, user=site.db_user,
        db_password=db_password))
    argv = [str(venv / "bin" / "borgmatic"), "--config", str(config)]
    versions = (f"borgmatic {run([*argv[:1], '--version']).stdout.strip()}, "
                f"{run(['borg', '--version']).stdout.strip()}")
    return argv, versions


def borgmatic(bench: Bench, site: SampleSite, fs_db: Watched, fs_full: Watched) -> None:
    """borgmatic create; DROP DATABASE; borgmatic restore; borgmatic extract of the tree."""
    report = bench.report
    folder = bench.work / "borgmatic"
    folder.mkdir()
    try:
        argv, versions = borgmatic_setup(bench, site, folder)
    except (BenchError, OSError) as exc:
        report.add("borgmatic comparison", f"could not run here: {exc}", "", "")
        report.notes.append(f"- borgmatic could not run here: {exc}")
        return
    report.add("borgmatic / borg versions", versions, "",
               report.command(f"pip install borgmatic=={BORGMATIC_VERSION} (own venv); "
                              "apt-get install -y borgbackup"))
    create_repo = [*argv, "repo-create", "--encryption", "repokey-blake2"]
    run(create_repo)
    report.command(create_repo)
    create = [*argv, "create"]
    report.load("before borgmatic create")
    made = run(create)
    report.add("borgmatic create (information: dump via the hook + borg create)", timing(made),
               "", report.command(create))
    report.add("borg repository size", mb(du_bytes(folder / "repo")), "",
               report.command("du -sb $WORK/borgmatic/repo"))
    drop = f"DROP DATABASE `{site.database}`"
    sql(bench, drop)
    restore = [*argv, "restore", "--archive", "latest"]
    report.load("before borgmatic restore")
    restored = run(restore)
    tables = table_count(bench, site.database)
    report.add("borgmatic restore (database, after DROP DATABASE)",
               f"{timing(restored)}; {tables} tables back", "",
               report.command(f"{drop}; {' '.join(restore)}"))
    destination = folder / "extract"
    destination.mkdir()
    extract = [*argv, "extract", "--archive", "latest", "--path",
               str(site.path).lstrip("/"), "--destination", str(destination)]
    extracted = run(extract)
    files = scan_tree(destination / str(site.path).lstrip("/"), [])
    report.add("borgmatic extract (site tree into an empty folder)",
               f"{timing(extracted)}; {files.count} files, {mb(files.bytes)}", "",
               report.command(extract))
    both = restored.seconds + extracted.seconds
    report.add("borgmatic restore + extract (wall)",
               f"{both:.1f} s (CPU {restored.cpu + extracted.cpu:.1f} s)", "", "")
    report.add("Ratio flowsafe full restore / borgmatic restore + extract",
               f"{fs_full.seconds / both:.2f}", "", "")
    report.add("Ratio flowsafe DB restore / borgmatic restore (database only)",
               f"{fs_db.seconds / restored.seconds:.2f}", "", "")
    shutil.rmtree(destination)


# --- the run ------------------------------------------------------------------------------


def big_site(bench: Bench, with_borgmatic: bool) -> None:
    report = bench.report
    site, built = build(bench, "www", DATABASE, bench.scale)
    stats = scan_tree(site.path, list(DEFAULT_EXCLUDES))
    report.add(f"Benchmark sample (scale {bench.scale:g}): build time", f"{built:.1f} s", "",
               report.command(f"build_site(..., scale={bench.scale:g})"))
    report.add("Site tree restored (uploads part)",
               f"{mb(stats.bytes)} in {stats.count} files ({mb(stats.uploads_bytes)} in "
               f"{stats.uploads_count} uploads)", "",
               report.command("flowsafe.scan.scan_tree($SITE, excludes)"))
    report.add("Database data on the server (InnoDB)", mb(data_length(bench, site.database)), "",
               report.command("SELECT SUM(DATA_LENGTH) FROM information_schema.TABLES ..."))
    plain = baseline(bench, site)
    fs = flowsafe_backup(bench, site)
    fs_db = db_restore(bench, fs, plain)
    fs_full = full_restore(bench, fs)
    report.add("flowsafe repository size", mb(du_bytes(fs.repo)), "",
               report.command("du -sb $WORK/flowsafe/repo"))
    shutil.rmtree(bench.work / "flowsafe")
    if with_borgmatic:
        borgmatic(bench, site, fs_db, fs_full)
    report.load("at the end")
    print(f"  flowsafe DB restore: {brief(fs_db)}", flush=True)


NOTES = [
    "Notes:", "",
    "- The baseline load is `mariadb NEWDB < dump.sql` alone: the dump file is already on "
    "local disk and in the page cache, nothing is checked, and the new database is not put "
    "in place of anything. mariadb-dump's defaults (`--opt`) write extended INSERTs with "
    "keys disabled and foreign/unique checks off, autocommit on.",
    "- The flowsafe DB restore ratio is the whole command, from start to exit: reading the "
    "config and the manifest (`restic dump`), the plan and the lock, `restic restore` of the "
    "dump files out of the repository (decrypt, decompress, write), creating the scratch "
    "database, the load (`--jobs` `mariadb` clients at a time, one per table, biggest first, each "
    "table file's SHA-256 checked against the manifest while it streams), the row-count "
    "check of every table, the atomic `RENAME TABLE` swap and the run record. The load "
    "phase alone is the span from its first `mariadb` child to its last (views/routines "
    "file included), seen by polling every 20 ms.",
    "- CPU figures count the client processes only (flowsafe, restic, mariadb and their "
    "children): the MariaDB server, which does most of the loading work, is not a child.",
    "- Peak RSS is `VmHWM` of the flowsafe process only (its restic and mariadb children are "
    "separate processes and not counted).",
    "- After each flowsafe restore, `flowsafe undo --purge --yes` drops the kept rollback "
    "database and folder (not timed).",
    "- borgmatic: a repokey-blake2 (encrypted) borg repository with zstd,3 compression "
    "(restic's `auto` is zstd too); the site tree with the same exclusions; the database "
    "through the `mariadb_databases` hook (site account, password from a credential file, "
    "handed to the clients through a pipe; Unix socket). `borgmatic create` streams one "
    "`mariadb-dump --add-drop-database --single-transaction --events --routines "
    "--databases` into borg through a named pipe. `borgmatic restore` streams "
    "`borg extract --stdout` of that dump into one `mariadb --batch`, straight into the "
    "original database name (the dump drops and re-creates it; the bench dropped it "
    "first): no scratch database, no checks, no swap, so an interrupted restore leaves a "
    "half-loaded production database. `borgmatic extract --path $SITE --destination DIR` "
    "runs `borg extract` of the tree into an empty folder (flowsafe also restores into a new "
    "sibling folder, then carries the excluded folders over and swaps).",
]


RACE = (
    "- Fixed: parallel loads (`--jobs 2`) used to fail now and then with ERROR 1100 (`Table "
    "'files' was not locked with LOCK TABLES`): mariadb-dump's `LOCK TABLES ... WRITE` in one "
    "table file raced with another client creating a table with a foreign key to it. Dumps "
    "are now written with `--skip-add-locks` (src/flowsafe/mariadb/dump.py), and the figures "
    "above come from such dumps. Should a parallel load still fail, the bench notes the "
    "failed attempt and runs the command again once with `--jobs 1`."
)


def parse(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.restore", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    common_args(parser)
    parser.add_argument("--no-borgmatic", action="store_true",
                        help="skip the borgmatic comparison")
    args = parser.parse_args(argv)
    if args.scale <= 0:
        parser.error("--scale must be positive")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse(sys.argv[1:] if argv is None else argv)
    command = invocation("bench.restore", argv)
    started = time.monotonic()
    with workspace(args.workdir, args.keep, "restore") as work, private_server(work) as server:
        bench = Bench(args.scale, work, server, Report(work))
        lines = machine(server)
        step("benchmark-scale sample: baseline load, flowsafe restores, borgmatic",
             lambda: big_site(bench, not args.no_borgmatic))
        bench.report.notes = [*NOTES, RACE, *bench.report.notes]
        text = render(bench.report, section=SECTION, script="bench/restore.py",
                      invocation=command, lines=lines,
                      minutes=(time.monotonic() - started) / 60, about=SAME_SERVER)
        publish(SECTION, text, args.no_report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
