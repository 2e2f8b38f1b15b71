"""The cron flavour, for machines whose init is not systemd: ``/etc/cron.d/flowsafe``.

One line per job, run as root by /bin/sh with a full PATH (Debian's cron PATH has no
/usr/local/bin), calling flowsafe by its absolute path under ``nice``/``ionice``. Each
run appends its output, after a dated header line, to /var/log/flowsafe/flowsafe.log,
which ``/etc/logrotate.d/flowsafe`` rotates; a failed run also prints one line, which
cron mails to root where mail is set up. Cron has no catch-up for missed nights and
no random delay.
"""

from __future__ import annotations

import re
import shlex
from datetime import datetime
from pathlib import Path

from flowsafe.schedule.files import LOG_DIR, LOG_FILE, header, here, remove_ours, write_ours
from flowsafe.schedule.jobs import WEEKDAY, Installed, InstalledJob, Job, next_run

CRON_FILE = Path("/etc/cron.d/flowsafe")
LOGROTATE_FILE = Path("/etc/logrotate.d/flowsafe")
PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
_LINE = re.compile(r"^(\d+) (\d+) \* \* (\*|\d) root (.+)$")
_JOB = re.compile(r"^# job (\w+): ")


def _command(job: Job) -> str:
    """The job as one /bin/sh line; ``%`` escaped, since cron reads it as a newline."""
    steps = " && ".join("nice -n 10 ionice -c 3 " + shlex.join(c) for c in job.commands)
    log = shlex.quote(str(LOG_FILE))
    line = (f'(echo "== $(date -Is) flowsafe {job.name}"; {steps}) >>{log} 2>&1 || echo '
            f'"flowsafe: the scheduled {job.name} failed (exit $?); see {LOG_FILE}"')
    return line.replace("%", "\\%")


def cron_text(jobs: list[Job], config: Path) -> str:
    lines = [header(config, f"# Output: {LOG_FILE}, rotated by {LOGROTATE_FILE}."),
             "SHELL=/bin/sh", f"PATH={PATH}", ""]
    for job in jobs:
        lines.append(f"# job {job.name}: {job.description}, {job.when}")
        weekday = str(WEEKDAY) if job.weekly else "*"
        lines.append(f"{job.minute} {job.hour} * * {weekday} root {_command(job)}")
    return "\n".join(lines) + "\n"


def logrotate_text(config: Path) -> str:
    return header(config) + f"""{LOG_FILE} {{
    weekly
    rotate 8
    compress
    delaycompress
    missingok
    notifempty
    create 0600 root root
}}
"""


def install(jobs: list[Job], config: Path) -> list[Path]:
    """Write the cron file, the logrotate file and the log folder (0700)."""
    here(LOG_DIR).mkdir(parents=True, exist_ok=True, mode=0o700)
    write_ours(here(CRON_FILE), cron_text(jobs, config))
    write_ours(here(LOGROTATE_FILE), logrotate_text(config))
    return [here(CRON_FILE), here(LOGROTATE_FILE)]


def remove() -> list[Path]:
    """Remove the cron and logrotate files flowsafe wrote (the log stays)."""
    return remove_ours([here(CRON_FILE), here(LOGROTATE_FILE)])


def installed(now: datetime | None = None) -> Installed | None:
    """The jobs of the cron file, as it says; None when there is none of ours."""
    path = here(CRON_FILE)
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None
    jobs = []
    name = "job"
    for line in text.splitlines():
        if found := _JOB.match(line):
            name = found.group(1)
        elif found := _LINE.match(line):
            minute, hour, weekday, command = found.groups()
            when = (f"{int(hour):02d}:{int(minute):02d} "
                    f"{'daily' if weekday == '*' else 'on weekday ' + weekday} (cron)")
            day = None if weekday == "*" else int(weekday)
            upcoming = next_run(int(hour), int(minute), day, now or datetime.now())
            jobs.append(InstalledJob(name, when, upcoming.strftime("%Y-%m-%d %H:%M"),
                                     [command.replace("\\%", "%")]))
    config = re.search(r"--config (\S+)", text)
    files = [p for p in (path, here(LOGROTATE_FILE)) if p.exists()]
    return Installed("cron", jobs, files, config.group(1) if config else None,
                     f"{LOG_FILE} (rotated by {LOGROTATE_FILE})")
