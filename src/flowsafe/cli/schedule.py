"""``flowsafe schedule install|show|remove``: nightly backups, prunes and drills by themselves."""

from __future__ import annotations

from typing import Annotated

import typer

from flowsafe import render
from flowsafe.cli.app import app
from flowsafe.cli.common import STATE, JsonOpt
from flowsafe.config import config_path
from flowsafe.schedule.jobs import ScheduleOptions
from flowsafe.schedule.run import run_install, run_remove, run_show

schedule_app = typer.Typer(help="Run backups, prunes and drills by themselves (systemd or cron).",
                           no_args_is_help=True, rich_markup_mode=None)
app.add_typer(schedule_app, name="schedule")


@schedule_app.command("install")
def schedule_install(
    at: Annotated[str, typer.Option("--at", help="Time of the nightly backup, HH:MM.")]
    = "02:30",
    drill: Annotated[str, typer.Option(
        "--drill", help="weekly (Sundays), daily, or off; two hours after the backup.")]
    = "weekly",
    prune: Annotated[str, typer.Option(
        "--prune", help="daily (after each nightly backup) or off.")] = "daily",
) -> None:
    """Write and enable systemd timers (or /etc/cron.d/flowsafe without systemd) for this
    config; a second install replaces the first."""
    result = run_install(config_path(STATE.config_file).absolute(),
                         ScheduleOptions(at, drill, prune))
    esc = render.esc
    render.out.print(f"Installed the {result.kind} schedule for {esc(result.config)}:")
    for job in result.jobs:
        render.out.print(f"  {job.name}: {esc(job.description)}, {job.when}")
    for path in result.files:
        render.out.print(f"  wrote {esc(path)}")
    for path in result.removed:
        render.out.print(f"  removed {esc(path)} (the other kind of schedule)")
    render.out.print("See it with: flowsafe schedule show")


@schedule_app.command("show")
def schedule_show(json_out: JsonOpt = False) -> None:
    """What is installed, what each job runs and when it runs next."""
    installed = run_show()
    if json_out:
        render.print_json(installed)
    else:
        render.show_schedule(installed)


@schedule_app.command("remove")
def schedule_remove() -> None:
    """Disable and remove the schedule flowsafe installed (the log file stays)."""
    removed = run_remove()
    for path in removed:
        render.out.print(f"removed {render.esc(path)}")
    if not removed:
        render.out.print("No flowsafe schedule was installed; nothing removed.")
