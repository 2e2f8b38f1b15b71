"""What the schedule runs, and when: the nightly backup of every site (then prune) and
the drill (weekly or daily, two hours later, so it does not meet the night's prune)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from flowsafe.errors import ConfigError

DRILL_CHOICES = ("weekly", "daily", "off")
PRUNE_CHOICES = ("daily", "off")
DRILL_AFTER = timedelta(hours=2)
RANDOM_DELAY = "15min"
WEEKDAY = 0  # drills run on Sundays (cron counts Sunday as 0)
_AT = re.compile(r"([01]?\d|2[0-3]):([0-5]\d)")


@dataclass(frozen=True)
class ScheduleOptions:
    """What ``flowsafe schedule install`` was asked for."""

    at: str = "02:30"
    drill: str = "weekly"
    prune: str = "daily"


@dataclass(frozen=True)
class Job:
    """One scheduled job: its name (``backup``, ``drill``), when, and the commands it runs
    one after another (a failure stops the rest)."""

    name: str
    description: str
    hour: int
    minute: int
    weekly: bool
    commands: tuple[tuple[str, ...], ...]

    @property
    def when(self) -> str:
        return f"{'Sundays' if self.weekly else 'daily'} at {self.hour:02d}:{self.minute:02d}"


def parse_at(text: str) -> tuple[int, int]:
    """``HH:MM`` (24-hour) as (hour, minute); ``ConfigError`` for anything else."""
    found = _AT.fullmatch(text.strip())
    if not found:
        raise ConfigError(f"--at takes a time of day as HH:MM (24-hour), e.g. 02:30; "
                          f"'{text}' is not one")
    return int(found.group(1)), int(found.group(2))


def _choice(value: str, option: str, choices: tuple[str, ...]) -> str:
    if value not in choices:
        raise ConfigError(f"{option} takes {', '.join(choices)}; not '{value}'")
    return value


def jobs(options: ScheduleOptions, executable: Path, config: Path) -> list[Job]:
    """The jobs for these options; every command names the executable and config file."""
    hour, minute = parse_at(options.at)
    drill = _choice(options.drill, "--drill", DRILL_CHOICES)
    prune = _choice(options.prune, "--prune", PRUNE_CHOICES)
    base = (str(executable), "--config", str(config))
    backup: list[tuple[str, ...]] = [(*base, "backup", "--reason", "nightly")]
    if prune == "daily":
        backup.append((*base, "prune"))
    made = [Job("backup", "nightly backup" + (" and prune" if prune == "daily" else "")
                + " of every site", hour, minute, False, tuple(backup))]
    if drill != "off":
        later = datetime(2000, 1, 1, hour, minute) + DRILL_AFTER
        made.append(Job("drill", "drill of every site's newest backup", later.hour,
                        later.minute, drill == "weekly", ((*base, "drill"),)))
    return made


def next_run(hour: int, minute: int, weekday: int | None, now: datetime) -> datetime:
    """The next local time at hour:minute (on ``weekday``, 0 = Sunday, when given)."""
    candidate = now.replace(hour=hour, minute=minute, second=0, microsecond=0)
    for _ in range(8):
        if candidate > now and (weekday is None or (candidate.weekday() + 1) % 7 == weekday):
            return candidate
        candidate += timedelta(days=1)
    raise AssertionError("a weekday always comes within 8 days")


@dataclass(frozen=True)
class InstalledJob:
    """A job as its installed files describe it."""

    name: str
    when: str
    next_run: str | None
    commands: list[str]


@dataclass(frozen=True)
class Installed:
    """What ``schedule show`` found: the kind (systemd, cron, or None), its jobs, its files,
    the config its commands name, and where their output goes."""

    kind: str | None
    jobs: list[InstalledJob]
    files: list[Path]
    config: str | None
    output: str | None
