"""Benchmark of ``flowsafe drill`` (issue 4), written to the "Drill (issue 4)" section of
BENCHMARKS.md.

Run as ``.venv/bin/python -m bench.drill [--scale S] [--workdir DIR] [--keep]
[--no-report]`` (``make bench`` uses the defaults). On one private MariaDB started here:

1. build the benchmark-scale sample site (dump >= 1 GB, uploads >= 2 GB at BENCH_SCALE);
2. ``flowsafe init --db-user root`` + ``flowsafe backup``;
3. the database restore alone, as in the restore bench:
   ``flowsafe restore latest --db-only --yes --no-safety-backup --jobs 2``;
4. a full drill, ``flowsafe drill latest --json --key-file KEY`` (every check, the
   credentials too), watched for its wall time and peak RSS; the time of each check comes
   from the JSON report (``checks[].seconds``).

Every child is waited for (killed on error or after ``RUN_LIMIT`` seconds), the MariaDB
servers are stopped (the drill stops its own), and the run's folder is removed at the
end unless ``--keep``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from typing import Any

from bench.common import (
    SAME_SERVER,
    Bench,
    Report,
    build,
    common_args,
    invocation,
    machine,
    mb,
    publish,
    render,
    step,
    timing,
    verdict,
    watch,
    workspace,
)
from bench.restore import (
    DATABASE,
    JOBS,
    RACE,
    failure,
    flowsafe_backup,
    jobs_of,
    purge,
    watch_restore,
    with_jobs,
)
from flowsafe.mariadb.instance import private_server
from flowsafe.secret import write_private

SECTION = "## Drill (issue 4)"
TARGET_RATIO = 1.5


def big_site(bench: Bench) -> None:
    report = bench.report
    site, built = build(bench, "www", DATABASE, bench.scale)
    report.add(f"Benchmark sample (scale {bench.scale:g}): build time", f"{built:.1f} s", "",
               report.command(f"build_site(..., scale={bench.scale:g})"))
    fs = flowsafe_backup(bench, site)
    argv = fs.argv("restore", "latest", "--db-only", "--yes", "--no-safety-backup",
                   "--jobs", JOBS)
    report.load("before the database restore")
    restored, argv = watch_restore(bench, argv, fs.env)
    report.add(f"flowsafe restore --db-only --jobs {jobs_of(argv)} (wall)", timing(restored),
               "", report.command(argv))
    purge(bench, fs)
    key = bench.work / "master.key"
    write_private(key, site.master_key + "\n")
    drill_argv = fs.argv("drill", "latest", "--json", "--key-file", str(key))
    for attempt in (1, 2):
        report.load("before the drill" if attempt == 1 else "before the drill with --jobs 1")
        drilled = watch(drill_argv, fs.env, bench.work, ok=(0, 3))
        result: dict[str, Any] = json.loads(drilled.stdout)[0]
        if result["ok"] or attempt == 2:
            break
        failed = [c for c in result["checks"] if c["result"] == "failed"]
        why = "; ".join(f"{c['name']}: {failure(str(c['detail']))}" for c in failed)
        fkey = report.command(drill_argv)
        report.add(f"FAILED drill: {fkey}", f"{drilled.seconds:.1f} s, failed checks: {why}",
                   "", fkey)
        report.notes.append(f"- FAILED drill `{report.commands[fkey]}` ({drilled.seconds:.1f} s):"
                            f" {why} (run again with `--jobs 1`)")
        drill_argv = with_jobs(drill_argv, "1")
    report.load("after it")
    ckey = report.command(drill_argv)
    ratio = drilled.seconds / restored.seconds
    report.add(f"flowsafe drill --jobs {jobs_of(drill_argv)} (wall)", f"{timing(drilled)}; "
               "drill verdict "
               f"{'ok' if result['ok'] else 'FAILED'}", "", ckey)
    report.add("Ratio drill / database restore alone",
               f"{ratio:.2f} ({verdict(ratio <= TARGET_RATIO)})", f"<= {TARGET_RATIO}", ckey)
    report.add("flowsafe process peak RSS (VmHWM, drill)", mb(drilled.peak_rss), "",
               ckey + " (watched)")
    report.add("drill's own total (report.seconds)", f"{float(result['seconds']):.1f} s", "",
               ckey + " (JSON)")
    checks = 0.0
    for check in result["checks"]:
        seconds = float(check["seconds"])
        checks += seconds
        report.add(f"... check: {check['name']}",
                   f"{seconds:.1f} s ({check['result']}: {check['detail']})", "",
                   ckey + " (JSON)")
    report.add("... outside the checks (private MariaDB start/stop, record, process start)",
               f"{drilled.seconds - checks:.1f} s", "", ckey)


NOTES = [
    "Notes:", "",
    "- The database restore alone is the same command as in the restore bench, on the same "
    "site and server in this run: restic restore of the dump files, scratch database, load "
    "with 2 clients, row counts, swap.",
    "- The drill runs in its own private MariaDB (started and stopped by flowsafe, fast "
    "settings) and a temp folder: `restore files` (restic restore of the tree) runs in a "
    "thread alongside `load database` (restic restore of the dump files, then the load), so "
    "on 2 cores they compete and `load database` carries both; `restore files` is then only "
    "the wait for that thread's end. Then the checks on the loaded "
    "copy, a PHP built-in server for the login page, and `restic check "
    "--read-data-subset 5%` (`repository data`).",
    "- Check times come from the drill's JSON report (`checks[].seconds`); they add up to "
    "less than the wall time, the rest being the private server's start and stop, the "
    "recording of the result in the repository and the process start.",
]


def parse(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.drill", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    common_args(parser)
    args = parser.parse_args(argv)
    if args.scale <= 0:
        parser.error("--scale must be positive")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse(sys.argv[1:] if argv is None else argv)
    command = invocation("bench.drill", argv)
    started = time.monotonic()
    with workspace(args.workdir, args.keep, "drill") as work, private_server(work) as server:
        bench = Bench(args.scale, work, server, Report(work))
        lines = machine(server)
        step("benchmark-scale sample: database restore, then a full drill",
             lambda: big_site(bench))
        bench.report.notes = [*NOTES, RACE, *bench.report.notes]
        text = render(bench.report, section=SECTION, script="bench/drill.py",
                      invocation=command, lines=lines,
                      minutes=(time.monotonic() - started) / 60, about=SAME_SERVER)
        publish(SECTION, text, args.no_report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
