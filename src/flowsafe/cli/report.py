"""``flowsafe report``: the backup report for a client or an auditor."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from flowsafe import render
from flowsafe.cli.app import app
from flowsafe.cli.common import JsonOpt, SiteOpt, load
from flowsafe.report.run import run_report


@app.command()
def report(
    out: Annotated[Path, typer.Option("--out", help="The file to write: FILE.html or FILE.pdf.")],
    site: SiteOpt = None,
    all_sites: Annotated[bool, typer.Option(
        "--all", help="Every site found in the repositories, not only those configured here."
    )] = False,
    month: Annotated[str | None, typer.Option(
        "--month", help="The month to report, YYYY-MM (default: this month).")] = None,
    json_out: JsonOpt = False,
) -> None:
    """One self-contained page per site: what is protected, every backup and drill of the
    month, retention, where the copies are, the key escrow, charts. No secret in it."""
    result = run_report(load(), site, month, out, all_sites)
    if json_out:
        render.print_json(result)
        return
    render.out.print(f"Wrote {result.path}: {len(result.sites)} site(s), {result.backups} "
                     f"backups and {result.drills} drills in {result.month}.")
    for name in result.empty_sites:
        render.out.print(f"  site {name}: no backup in {result.month} (the report says so).")
