"""``flowsafe update``: the safe ITFlow update, in one command."""

from __future__ import annotations

from typing import Annotated

import typer

from flowsafe import render
from flowsafe.cli.app import app
from flowsafe.cli.common import STATE, SiteOpt, YesOpt, ask, load
from flowsafe.errors import EXIT_FAILED
from flowsafe.update.run import UpdateOptions, UpdatePlan, run_update


@app.command()
def update(
    site: SiteOpt = None,
    yes: YesOpt = False,
    dry_run: Annotated[bool, typer.Option(
        "--dry-run", help="Show the installed and available versions and the steps; change "
        "nothing.")] = False,
    rollback_on_failure: Annotated[bool, typer.Option(
        "--rollback-on-failure", help="When a step fails, restore the pre-update backup "
        "(files and database).")] = False,
) -> None:
    """Update ITFlow safely: pre-update backup, ITFlow's updater (two invocations), checks
    of the outcome, post-update backup.

    Exit 0 updated (or already up to date), 1 a step failed (the message names it and the
    restore command), 2 the site cannot be updated this way.
    """
    config = load()
    options = UpdateOptions(dry_run, rollback_on_failure, STATE.config_file)

    def confirm(plan: UpdatePlan) -> bool:
        render.show_update_plan(plan)
        return ask(f"Update site '{plan.site}' now?", yes)

    def say(line: str) -> None:
        render.out.print(line, markup=False)

    with render.progress_bars() as bars:
        result = run_update(config, site, options, confirm=confirm, say=say, progress=bars)
    if result.outcome == "dry-run":
        render.show_update_plan(result.plan)
        render.out.print("Dry run: nothing changed.")
    elif result.outcome == "up-to-date":
        render.out.print(f"Site '{render.esc(result.plan.site)}' is up to date (ITFlow "
                         f"{render.esc(result.plan.current_app)}, schema "
                         f"{render.esc(result.plan.schema_in_db)}): nothing to do.")
    elif result.outcome == "cancelled":
        render.err.print("update cancelled; nothing changed")
        raise typer.Exit(EXIT_FAILED)
    else:
        render.show_update(result)
