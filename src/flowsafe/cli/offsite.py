"""``flowsafe copy``: the off-site copy of a site's snapshots."""

from __future__ import annotations

from typing import Annotated

import typer

from flowsafe import render
from flowsafe.cli.app import app
from flowsafe.cli.common import JsonOpt, load
from flowsafe.offsite.copy import run_copy


@app.command()
def copy(
    site: Annotated[str | None, typer.Option(
        "--site", help="Site name (default: every site with copy_to).")] = None,
    to: Annotated[str | None, typer.Option(
        "--to", help="Copy into this repository of the config (default: the site's copy_to)."
    )] = None,
    json_out: JsonOpt = False,
) -> None:
    """Copy new snapshots (and the key escrow) to the off-site repositories with restic copy.

    A repository that does not exist yet is created (format 2, the source's chunker
    parameters). Exit 1 when a copy failed (it is retried on the next run), 2 on a
    configuration error such as a wrong password.
    """
    outcomes = run_copy(load(), site, to)
    if json_out:
        render.print_json(outcomes)
    else:
        render.show_copies(outcomes)
    failed = [o.exit_code for o in outcomes if not o.ok]
    if failed:
        raise typer.Exit(max(failed))
