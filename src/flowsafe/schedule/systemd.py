"""The systemd flavour: a ``flowsafe-<job>.service`` (oneshot, its commands as ExecStart
lines, run in order) and ``.timer`` (``Persistent=true``: a night missed while the
machine was off runs at the next boot; a randomised delay) per job.

Hardening that fits a root backup job: ``Nice=``, ``IOSchedulingClass=idle``, a private
/tmp and ``ProtectSystem=full`` (/usr, /boot, /efi and /etc read-only), with
``ReadWritePaths=`` for any flowsafe path that lies below those; no network
restriction (repositories may be remote). Output goes to the journal (``journalctl
-u flowsafe-backup``).
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Sequence
from pathlib import Path

from flowsafe import execute
from flowsafe.errors import FlowsafeError
from flowsafe.schedule.files import header, here, live, remove_ours, root, write_ours
from flowsafe.schedule.jobs import RANDOM_DELAY, Installed, InstalledJob, Job

UNIT_DIR = Path("/etc/systemd/system")
JOB_NAMES = ("backup", "drill")
PROTECTED = (Path("/usr"), Path("/boot"), Path("/efi"), Path("/etc"))


def running() -> bool:
    """Whether systemd is the init of the (root) system: sd_booted()'s test."""
    return here(Path("/run/systemd/system")).is_dir()


def unit(name: str, kind: str) -> Path:
    return here(UNIT_DIR / f"flowsafe-{name}.{kind}")


def _quote(arg: str) -> str:
    """An ExecStart word: ``%`` and ``$`` escaped, quoted when it holds blanks or quotes."""
    word = arg.replace("%", "%%").replace("$", "$$")
    if re.search(r"[\s\"'\\;]", word):
        word = '"' + word.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return word


def writable_paths(paths: list[Path]) -> list[Path]:
    """Those of ``paths`` that ``ProtectSystem=full`` would make read-only."""
    return [p for p in paths if any(p == top or top in p.parents for top in PROTECTED)]


def service_text(job: Job, config: Path, writable: list[Path]) -> str:
    after = "network-online.target mariadb.service mysql.service"
    if job.name != "backup":
        after += " flowsafe-backup.service"  # a drill waits for a running backup and prune
    lines = [
        header(config),
        "[Unit]",
        f"Description=flowsafe {job.description} (config {config})",
        "Wants=network-online.target",
        f"After={after}",
        "",
        "[Service]",
        "Type=oneshot",
        *(f"ExecStart={' '.join(_quote(a) for a in command)}" for command in job.commands),
        "Nice=10",
        "IOSchedulingClass=idle",
        "CPUSchedulingPolicy=batch",
        "PrivateTmp=true",
        "ProtectSystem=full",
        *(f"ReadWritePaths=-{_quote(str(p))}" for p in writable),
        "TimeoutStartSec=20h",
        "SyslogIdentifier=flowsafe",
        "",
    ]
    return "\n".join(lines)


def calendar(job: Job) -> str:
    day = "Sun " if job.weekly else ""
    return f"{day}*-*-* {job.hour:02d}:{job.minute:02d}:00"


def timer_text(job: Job, config: Path) -> str:
    return "\n".join([
        header(config),
        "[Unit]",
        f"Description=flowsafe {job.description}, {job.when} (config {config})",
        "",
        "[Timer]",
        f"OnCalendar={calendar(job)}",
        "Persistent=true",
        f"RandomizedDelaySec={RANDOM_DELAY}",
        "AccuracySec=1min",
        "",
        "[Install]",
        "WantedBy=timers.target",
        "",
    ])


def _systemctl(*args: str) -> None:
    where = [] if live() else [f"--root={root()}"]
    execute.run(["systemctl", *where, *args], hint="systemctl could not change the timers")


def _timers(names: Sequence[str]) -> list[str]:
    return [f"flowsafe-{name}.timer" for name in names]


def install(jobs: list[Job], config: Path, writable: list[Path]) -> list[Path]:
    """Write and enable the jobs' units; disable and remove units of jobs no longer wanted."""
    wanted = [job.name for job in jobs]
    remove([name for name in JOB_NAMES if name not in wanted])
    written = []
    for job in jobs:
        for path, text in ((unit(job.name, "service"), service_text(job, config, writable)),
                           (unit(job.name, "timer"), timer_text(job, config))):
            write_ours(path, text)
            written.append(path)
    if live():
        _systemctl("daemon-reload")
        _systemctl("enable", "--now", *_timers(wanted))
    else:
        _systemctl("enable", *_timers(wanted))
    return written


def remove(names: Sequence[str] = JOB_NAMES) -> list[Path]:
    """Disable and remove the units flowsafe wrote for these jobs; the files removed."""
    present = [name for name in names if unit(name, "timer").exists()]
    if present and (running() or not live()):
        # already disabled, or a unit systemd does not know: the files go anyway
        with contextlib.suppress(FlowsafeError):
            _systemctl("disable", *(["--now"] if live() else []), *_timers(present))
    removed = remove_ours([unit(n, k) for n in names for k in ("timer", "service")])
    if removed and live() and running():
        _systemctl("daemon-reload")
    return removed


def _values(path: Path, key: str) -> list[str]:
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return []
    return [line.split("=", 1)[1].strip() for line in text.splitlines()
            if line.startswith(f"{key}=")]


def _next(name: str, expression: str) -> str | None:
    """When the timer fires next: systemd's answer on a live system, else the calendar's."""
    if live() and running():
        done = execute.run(["systemctl", "show", f"flowsafe-{name}.timer",
                            "--property=NextElapseUSecRealtime", "--value"], check=False)
        value = done.stdout.decode().strip()
        return value or None
    try:
        done = execute.run(["systemd-analyze", "calendar", expression], check=False)
    except FlowsafeError:
        return None
    found = re.search(r"Next elapse: (.+)", done.stdout.decode())
    return found.group(1).strip() if found else None


def installed() -> Installed | None:
    """The flowsafe units present, as their files say; None when there are none."""
    names = [n for n in JOB_NAMES if unit(n, "timer").exists()]
    if not names:
        return None
    jobs = []
    for name in names:
        expression = " ".join(_values(unit(name, "timer"), "OnCalendar"))
        delay = " ".join(_values(unit(name, "timer"), "RandomizedDelaySec"))
        when = expression + (f" (plus up to {delay} at random)" if delay else "")
        jobs.append(InstalledJob(name, when, _next(name, expression),
                                 _values(unit(name, "service"), "ExecStart")))
    found = re.search(r"--config (\S+)", " ".join(jobs[0].commands))
    files = [unit(n, k) for n in names for k in ("service", "timer")]
    return Installed("systemd", jobs, files, found.group(1) if found else None,
                     "the journal: journalctl -u flowsafe-backup -u flowsafe-drill")
