"""``flowsafe drill``: prove a backup restores."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from flowsafe import multisite, render
from flowsafe.catalog import site_repository
from flowsafe.cli.app import app
from flowsafe.cli.common import (
    CORES,
    IdentityOpt,
    JobsOpt,
    JsonOpt,
    SigningKeyOpt,
    SitesOpt,
    TrustUnsignedOpt,
    finish,
    load,
    show_each,
    trust,
)
from flowsafe.drill.report import DrillReport
from flowsafe.drill.run import DrillOptions, run_drill
from flowsafe.errors import EXIT_VERIFY, ConfigError
from flowsafe.keys.run import KeySource
from flowsafe.keys.source import read_key_file


def _finding(report: DrillReport) -> multisite.Finding:
    problem = None if report.ok else f"drill found a problem: {', '.join(report.failed())}"
    return multisite.Finding(problem, report.snapshot_id, EXIT_VERIFY)


@app.command()
def drill(
    snapshot: Annotated[str, typer.Argument(help="Snapshot id, prefix, or 'latest'.")]
    = "latest",
    site: SitesOpt = None,
    all_sites: Annotated[bool, typer.Option(
        "--all", help="The newest snapshot of every site (the default without --site).")]
    = False,
    key_file: Annotated[Path | None, typer.Option(
        help="A 0600 file holding the master key, to check that every credential decrypts."
    )] = None,
    age_identity: IdentityOpt = None,
    keep: Annotated[bool, typer.Option(
        "--keep", help="Leave the private MariaDB and the restored files; say how to reach them."
    )] = False,
    jobs: JobsOpt = CORES,
    trust_unsigned: TrustUnsignedOpt = False,
    signing_key_file: SigningKeyOpt = None,
    repository: Annotated[str | None, typer.Option(
        "--repository", help="Drill from this repository of the config (an off-site copy)."
    )] = None,
    json_out: JsonOpt = False,
) -> None:
    """Prove a backup restores: private MariaDB, temp folder, checks, recorded result.

    Drills every configured site unless --site names one. Exit 0 when every check
    passes, 3 when one fails, 1 when the drill could not run.
    """
    config = load()
    if all_sites and site is not None:
        raise ConfigError("--all and --site exclude each other: drop one")
    if snapshot != "latest" and site is None and len(config.sites) > 1:
        raise ConfigError(f"snapshot {snapshot} belongs to one site: pass --site with it")
    if site is None and not all_sites and not config.sites:
        site = site_repository(config, None)[0]  # attached only: the site its repository holds
    if key_file is not None:
        read_key_file(key_file)  # refuse a loose or malformed key file before any work
    source = KeySource(key_file, age_identity) if key_file or age_identity else None
    options = DrillOptions(snapshot, keep, source, jobs,
                           trust(trust_unsigned, signing_key_file), repository)
    with render.progress_bars(enabled=not json_out) as bars:
        run = multisite.each_site(config, site, "drill",
                              lambda name: run_drill(config, name, options, bars),
                              judge=_finding, on_done=show_each(render.show_drill, json_out))
    if json_out:
        render.print_json([render.drill_json(r) for r in run.results])
    finish(run)
