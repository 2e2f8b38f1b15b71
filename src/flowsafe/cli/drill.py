"""``flowsafe drill``: prove a backup restores."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from flowsafe import render
from flowsafe.cli.app import app
from flowsafe.cli.common import CORES, IdentityOpt, JobsOpt, JsonOpt, SiteOpt, load
from flowsafe.drill.run import DrillOptions, run_drill, run_drill_all
from flowsafe.errors import EXIT_VERIFY
from flowsafe.keys.run import KeySource
from flowsafe.keys.source import read_key_file


@app.command()
def drill(
    snapshot: Annotated[str, typer.Argument(help="Snapshot id, prefix, or 'latest'.")]
    = "latest",
    site: SiteOpt = None,
    all_sites: Annotated[bool, typer.Option("--all", help="The newest snapshot of every site.")]
    = False,
    key_file: Annotated[Path | None, typer.Option(
        help="A 0600 file holding the master key, to check that every credential decrypts."
    )] = None,
    age_identity: IdentityOpt = None,
    keep: Annotated[bool, typer.Option(
        "--keep", help="Leave the private MariaDB and the restored files; say how to reach them."
    )] = False,
    jobs: JobsOpt = CORES,
    repository: Annotated[str | None, typer.Option(
        "--repository", help="Drill from this repository of the config (an off-site copy)."
    )] = None,
    json_out: JsonOpt = False,
) -> None:
    """Prove a backup restores: private MariaDB, temp folder, checks, recorded result.

    Exit 0 when every check passes, 3 when one fails, 1 when the drill could not run.
    """
    config = load()
    if key_file is not None:
        read_key_file(key_file)  # refuse a loose or malformed key file before any work
    source = KeySource(key_file, age_identity) if key_file or age_identity else None
    options = DrillOptions(snapshot, keep, source, jobs, repository)
    with render.progress_bars(enabled=not json_out) as bars:
        if all_sites:
            reports = run_drill_all(config, options, bars)
        else:
            reports = [run_drill(config, site, options, bars)]
    if json_out:
        render.print_json([render.drill_json(r) for r in reports])
    else:
        for report in reports:
            render.show_drill(report)
    if not all(r.ok for r in reports):
        raise typer.Exit(EXIT_VERIFY)

