"""What the benchmarks share: the benchmark-scale sample on a private MariaDB, timed and
watched children (wall, CPU, peak RSS, which children ran when), the machine's
description, and writing one section of BENCHMARKS.md (leaving the others).

Every child runs in a session of its own and is killed (with what it started) on error,
on interrupt, or after ``RUN_LIMIT`` seconds.
"""

from __future__ import annotations

import argparse
import contextlib
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
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Protocol

from flowsafe import __version__
from flowsafe.mariadb.connection import (
    SOCKET_CANDIDATES,
    DbTarget,
    connect,
    option_file_text,
    server_version,
)
from flowsafe.mariadb.instance import PrivateServer
from flowsafe.sample import BENCH_SCALE, SampleSite, build_site
from flowsafe.secret import Secret, write_private

ROOT = Path(__file__).resolve().parent.parent
REPORT = ROOT / "BENCHMARKS.md"
DEFAULT_WORKDIR = Path("/var/tmp/flowsafe-bench")
POLL_SECONDS = 0.02
RUN_LIMIT = 3600.0  # seconds any one child may run before it is killed
SITE_NAME = "itflow"
SEED = 2
TARGET_RSS = 150 * 10**6
MB = 10**6

Spans = dict[str, tuple[float, float]]  # child kind -> (first seen, last seen), seconds
Classify = Callable[[list[bytes]], str | None]  # a child's argv -> its kind, or None
Split = Callable[[float, Mapping[str, tuple[float, float]]], dict[str, float]]


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
    spans: Spans = field(default_factory=dict)  # kind -> (first seen, last seen)


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
        text = text.replace(str(self.work).lstrip("/"), "${WORK#/}")
        for key, known in self.commands.items():
            if known == text:
                return key
        key = f"C{len(self.commands) + 1}"
        self.commands[key] = text
        return key

    def add(self, name: str, value: str, target: str = "", command: str = "") -> None:
        self.rows.append((name, value, target, command))
        print(f"  {name}: {value}" + (f" (target {target})" if target else ""), flush=True)


class Server(Protocol):
    """A MariaDB server root reaches over a socket: a private one, or the machine's own."""

    @property
    def socket(self) -> str: ...

    def target(self, database: str = "") -> DbTarget: ...


@dataclass(frozen=True)
class SystemServer:
    """The machine's own MariaDB (Debian's defaults: root over the socket, unix_socket)."""

    socket: str

    @classmethod
    def local(cls) -> SystemServer:
        found = next((path for path in SOCKET_CANDIDATES if Path(path).exists()), None)
        if found is None:
            raise BenchError("the machine's MariaDB is not running (no socket in "
                             f"{', '.join(SOCKET_CANDIDATES)}): start it, e.g. `service "
                             "mariadb start`")
        return cls(found)

    def target(self, database: str = "") -> DbTarget:
        return DbTarget(database=database, socket=self.socket, user="root")


@dataclass(frozen=True)
class Bench:
    """One run's settings and shared places; ``label`` names the server in figures."""

    scale: float
    work: Path
    server: Server
    report: Report
    label: str = "private server"


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
        stdout: int | IO[bytes] = subprocess.PIPE,
        stdin: int | IO[bytes] = subprocess.DEVNULL, cwd: Path | None = None) -> Ran:
    """Run a child to completion (its own session, killed on error or timeout), timed."""
    started, cpu = time.monotonic(), children_cpu()
    process = subprocess.Popen(list(argv), stdin=stdin, stdout=stdout, stderr=subprocess.PIPE,
                               env=dict(env) if env is not None else None, cwd=cwd,
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


def timing(ran: Ran | Watched) -> str:
    return f"{ran.seconds:.1f} s (CPU {ran.cpu:.1f} s)"


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


def child_argv(pid: int) -> list[bytes] | None:
    """A process's argv, None once it is gone."""
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return None


def program(argv: list[bytes]) -> str:
    """The base name of argv[0]."""
    return os.path.basename(argv[0].decode("utf-8", "replace")) if argv else ""


def no_kind(_argv: list[bytes]) -> str | None:
    return None


def no_phases(_total: float, _spans: Mapping[str, tuple[float, float]]) -> dict[str, float]:
    return {}


def watch(argv: Sequence[str], env: Mapping[str, str], folder: Path,
          classify: Classify = no_kind, split: Split = no_phases,
          ok: tuple[int, ...] = (0,)) -> Watched:
    """Run flowsafe, polling its VmHWM and its children every POLL_SECONDS.

    ``classify`` names the kind of each direct child from its argv; the span of each kind
    (first seen to last seen alive) goes to ``split``, which makes the phases.
    """
    with (open(folder / "stdout", "w+b") as out,
          open(folder / "stderr", "w+b") as err):
        started, cpu = time.monotonic(), children_cpu()
        process = subprocess.Popen(list(argv), stdout=out, stderr=err, env=dict(env),
                                   start_new_session=True)
        peak = 0
        seen: Spans = {}
        kinds: dict[int, str] = {}
        try:
            while process.poll() is None:
                now = time.monotonic() - started
                if now > RUN_LIMIT:
                    raise BenchError(f"{shlex.join(argv)} ran longer than {RUN_LIMIT:.0f} s")
                peak = max(peak, vm_hwm(process.pid))
                for child in child_pids(process.pid):
                    kind = kinds.get(child)
                    if kind is None:  # unknown yet: a forked child shows its parent's argv
                        child_args = child_argv(child)  # until it execs
                        kind = classify(child_args) if child_args is not None else None
                        if kind is not None:
                            kinds[child] = kind
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
    if process.returncode not in ok:
        raise BenchError(f"{shlex.join(argv)} exited {process.returncode}: {tail(stderr)}")
    return Watched(seconds, children_cpu() - cpu, stdout, peak, split(seconds, seen), seen)


def brief(watched: Watched) -> str:
    """'dump + split 1.0 s, restic 2.0 s' from a watched run's phases."""
    return ", ".join(f"{name.split(' (')[0]} {seconds:.1f} s"
                     for name, seconds in watched.phases.items())


# --- flowsafe, restic and the sample --------------------------------------------------------


@dataclass(frozen=True)
class Flowsafe:
    """One flowsafe config (site, repository, state) driven through the CLI."""

    config: Path
    repo: Path
    env: Mapping[str, str]

    def argv(self, *args: str) -> list[str]:
        return [sys.executable, "-m", "flowsafe", "--config", str(self.config), *args]


def flowsafe_env() -> dict[str, str]:
    return {**os.environ, "COLUMNS": "200"}


def flowsafe_init(bench: Bench, site: SampleSite, folder: Path,
                  db_user: str | None = None) -> tuple[Flowsafe, Ran, list[str]]:
    """``flowsafe init`` of ``site`` into a fresh repository under ``folder``:
    (config, the timed run, its argv)."""
    fs = Flowsafe(folder / "etc" / "flowsafe.toml", folder / "repo", flowsafe_env())
    argv = fs.argv("init", "--site", str(site.path), "--name", SITE_NAME, "--repo",
                   str(fs.repo), "--state-dir", str(folder / "state"),
                   "--db-socket", bench.server.socket,
                   *(["--db-user", db_user] if db_user else []))
    return fs, run(argv, env=fs.env), argv


def defaults_file(bench: Bench, site: SampleSite, *, root: bool = False) -> Path:
    """A 0600 ``[client]`` option file with the site's database account (or root)."""
    path = bench.work / ("root.cnf" if root else "client.cnf")
    target = (bench.server.target(site.database) if root else
              DbTarget(database=site.database, socket=bench.server.socket, user=site.db_user,
                       password=Secret(site.db_password)))
    write_private(path, option_file_text(target))
    return path


def restic_env(repo: Path, password: Path, cache: Path) -> dict[str, str]:
    return {**os.environ, "RESTIC_REPOSITORY": str(repo), "RESTIC_PASSWORD_FILE": str(password),
            "RESTIC_CACHE_DIR": str(cache)}


def build(bench: Bench, folder: str, database: str, scale: float) -> tuple[SampleSite, float]:
    """A sample site at ``scale`` under ``$WORK/folder``, and how long it took."""
    started = time.monotonic()
    site = build_site(bench.work / folder / "itflow", bench.server.target(), database=database,
                      seed=SEED, scale=scale)
    return site, time.monotonic() - started


def sql(bench: Bench, statement: str) -> None:
    """One statement as root on the private server."""
    with connect(bench.server.target()) as conn, conn.cursor() as cur:
        cur.execute(statement)


def data_length(bench: Bench, database: str) -> int:
    with connect(bench.server.target()) as conn, conn.cursor() as cur:
        cur.execute("SELECT SUM(DATA_LENGTH) FROM information_schema.TABLES "
                    "WHERE TABLE_SCHEMA = %s", (database,))
        row = cur.fetchone()
    return int(row[0]) if row and row[0] is not None else 0


# --- the machine and the report -----------------------------------------------------------


def first_line(argv: Sequence[str]) -> str:
    try:
        done = subprocess.run(list(argv), capture_output=True, text=True, check=False, timeout=30)
    except OSError:
        return "not installed"
    lines = (done.stdout or done.stderr).strip().splitlines()
    return lines[0] if lines else "no output"


def machine(server: Server) -> list[str]:
    """Cores, RAM, CPU, kernel and the versions of the tools involved."""
    meminfo = Path("/proc/meminfo").read_text().split()
    ram = int(meminfo[meminfo.index("MemTotal:") + 1]) * 1024
    cpu = next((line.split(":", 1)[1].strip() for line in
                Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), "unknown")
    kind = ("private, started by the bench" if isinstance(server, PrivateServer)
            else "the machine's own, Debian defaults")
    return [
        f"CPU: {os.cpu_count()} cores ({cpu}); RAM {ram / 2**30:.1f} GiB",
        f"OS: {platform.system()} {platform.release()}; Python {platform.python_version()}",
        f"restic: {first_line(['restic', 'version'])}",
        f"MariaDB: server {server_version(server.target())} "
        f"({kind}); "
        f"client {first_line(['mariadb-dump', '--version'])}",
        f"flowsafe {__version__}",
    ]


def cell(text: str) -> str:
    return text.replace("|", "\\|")


def render(report: Report, *, section: str, script: str, invocation: str,
           lines: Sequence[str], minutes: float, about: str) -> str:
    """The section's Markdown: header, machine, load averages, table, commands, notes."""
    out = [
        section, "",
        f"Produced by `{script}` on {datetime.now(UTC):%Y-%m-%d %H:%M} UTC in "
        f"{minutes:.1f} minutes, with:", "",
        f"    {invocation}", "",
        "Machine:", "", *[f"- {line}" for line in lines],
        "- 1-minute load average during the run (this bench runs 1-2 busy processes; more "
        "means other jobs shared the machine): "
        + ", ".join(f"{label} {value:.1f}" for label, value in report.loads), "",
        about, "",
        "| Figure | Value | Target | Command |",
        "|---|---|---|---|",
    ]
    out += [f"| {cell(n)} | {cell(v)} | {cell(t)} | {c} |" for n, v, t, c in report.rows]
    out += ["", "Commands:", ""]
    out += [f"- {key}: `` {text} ``" for key, text in report.commands.items()]
    if report.notes:
        out += ["", *report.notes]
    return "\n".join(out) + "\n"


def write_section(section: str, text: str) -> None:
    """Replace (or append) ``section`` in BENCHMARKS.md, keeping every other section."""
    old = REPORT.read_text() if REPORT.exists() else "# Benchmarks\n"
    start = old.find(section + "\n")
    if start < 0:
        new = old.rstrip("\n") + "\n\n" + text
    else:
        end = old.find("\n## ", start + len(section))
        new = old[:start] + text + ("\n" + old[end + 1:] if end >= 0 else "")
    REPORT.write_text(new)


SAME_SERVER = ("All on one private MariaDB started by the bench (fast settings: no doublewrite, "
               "no flush at commit); files and database were just written, so the page cache "
               "is warm for the baseline and flowsafe alike. Each figure is one run. `$WORK` is "
               "the bench's temp folder; `$SITE` the benchmark-scale site tree.")


def step(name: str, action: Callable[[], None]) -> None:
    print(f"== {name}", flush=True)
    started = time.monotonic()
    action()
    print(f"   ({time.monotonic() - started:.1f} s)", flush=True)


def common_args(parser: argparse.ArgumentParser) -> None:
    """--scale, --workdir, --keep and --no-report."""
    parser.add_argument("--scale", type=float, default=BENCH_SCALE,
                        help=f"benchmark sample scale (default BENCH_SCALE = {BENCH_SCALE:g})")
    parser.add_argument("--workdir", type=Path, default=DEFAULT_WORKDIR,
                        help=f"where the run's temp folder goes (default {DEFAULT_WORKDIR})")
    parser.add_argument("--keep", action="store_true", help="keep the run's folder")
    parser.add_argument("--no-report", action="store_true", help="do not write BENCHMARKS.md")


def invocation(module: str, argv: Sequence[str] | None) -> str:
    return shlex.join([".venv/bin/python", "-m", module,
                       *(sys.argv[1:] if argv is None else argv)])


@contextlib.contextmanager
def workspace(workdir: Path, keep: bool, what: str) -> Iterator[Path]:
    """The run's temp folder under ``workdir`` (removed at the end unless ``keep``)."""
    os.environ["PATH"] = "/usr/sbin:/sbin:" + os.environ.get("PATH", "/usr/bin:/bin")
    workdir.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="run-", dir=workdir))
    work.chmod(0o711)  # private servers run as mysql and must pass through to their folders
    print(f"flowsafe {what} benchmark in {work}", flush=True)
    try:
        yield work
    finally:
        if keep:
            print(f"kept {work}", flush=True)
        else:
            shutil.rmtree(work, ignore_errors=True)
            with contextlib.suppress(OSError):
                workdir.rmdir()


def publish(section: str, text: str, no_report: bool) -> None:
    if no_report:
        print(text)
    else:
        write_section(section, text)
        print(f"wrote {REPORT} ({section})", flush=True)
