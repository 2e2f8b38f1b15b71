"""The schedule chapter of ``flowsafe demo`` (called by demo.py): the systemd units
``schedule install`` writes, installed into a stand-in root below the demo's folder
(nothing on this machine changes), then ``schedule show``."""

from __future__ import annotations

import os
from pathlib import Path

from flowsafe import render
from flowsafe.schedule.files import ROOT_ENV
from flowsafe.schedule.jobs import Installed, ScheduleOptions
from flowsafe.schedule.run import run_install, run_show


def demo_schedule(config_file: Path, folder: Path) -> Installed:
    """Install the schedule for ``config_file`` below ``folder`` and show it (as root)."""
    (folder / "run" / "systemd" / "system").mkdir(parents=True, exist_ok=True)
    before = os.environ.get(ROOT_ENV)
    os.environ[ROOT_ENV] = str(folder)
    try:
        result = run_install(config_file, ScheduleOptions())
        render.out.print(f"flowsafe schedule install (into {render.esc(folder)}, not this "
                         f"machine): {len(result.files)} systemd files")
        installed = run_show()
        render.show_schedule(installed)
        return installed
    finally:
        if before is None:
            os.environ.pop(ROOT_ENV)
        else:
            os.environ[ROOT_ENV] = before
