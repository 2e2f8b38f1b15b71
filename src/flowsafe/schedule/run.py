"""``flowsafe schedule install|show|remove``: pick systemd or cron, check root, name the
flowsafe executable by its absolute path, and install, show or remove the jobs."""

from __future__ import annotations

import os
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

from flowsafe.config import Config, load_config
from flowsafe.errors import ConfigError
from flowsafe.schedule import cron, systemd
from flowsafe.schedule.jobs import Installed, Job, ScheduleOptions, jobs


@dataclass(frozen=True)
class InstallResult:
    """What ``schedule install`` wrote, and what of another kind it removed."""

    kind: str
    jobs: list[Job]
    files: list[Path]
    removed: list[Path]
    config: Path


def flowsafe_executable() -> Path:
    """The absolute path of the ``flowsafe`` command running now (cron's PATH may not
    hold its folder, so the schedule never relies on PATH)."""
    candidates = [Path(sys.argv[0]).absolute(), Path(sys.executable).parent / "flowsafe"]
    found = shutil.which("flowsafe")
    if found:
        candidates.append(Path(found).absolute())
    for candidate in candidates:
        if candidate.name == "flowsafe" and candidate.is_file() and os.access(candidate, os.X_OK):
            return candidate
    raise ConfigError("cannot find the flowsafe command to schedule: install flowsafe (pip "
                      "install .) so that a `flowsafe` executable exists, then run it")


def _require_root(action: str) -> None:
    if os.geteuid() != 0:
        raise ConfigError(f"schedule {action} writes system files (/etc/systemd/system or "
                          f"/etc/cron.d): run it as root, e.g. sudo flowsafe schedule {action}")


def _paths(config: Config) -> list[Path]:
    """Where the scheduled jobs write: the state folder, local repositories, the sites."""
    local = [Path(r.url) for r in config.repositories.values() if r.url.startswith("/")]
    return [config.state_dir, *local, *(site.path for site in config.sites.values())]


def run_install(config_file: Path, options: ScheduleOptions) -> InstallResult:
    """Install (or replace) the schedule for this config file."""
    made = jobs(options, flowsafe_executable(), config_file)
    _require_root("install")
    config = load_config(config_file)
    if systemd.running():
        removed = cron.remove()
        files = systemd.install(made, config_file, systemd.writable_paths(_paths(config)))
        return InstallResult("systemd", made, files, removed, config_file)
    removed = systemd.remove()
    return InstallResult("cron", made, cron.install(made, config_file), removed, config_file)


def run_show() -> Installed:
    """What is installed (systemd units first, then the cron file)."""
    return systemd.installed() or cron.installed() or Installed(None, [], [], None, None)


def run_remove() -> list[Path]:
    """Disable and remove every schedule file flowsafe wrote; the files removed."""
    _require_root("remove")
    return systemd.remove() + cron.remove()
