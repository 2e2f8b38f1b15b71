"""Commands that set up and watch sites: init, backup, snapshots, prune, status, demo."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from flowsafe import render
from flowsafe.backup import run_backup
from flowsafe.cli.app import app
from flowsafe.cli.common import STATE, JsonOpt, SiteOpt, load
from flowsafe.config import DatabaseSettings, config_path
from flowsafe.errors import EXIT_FAILED
from flowsafe.init import InitOptions, run_init
from flowsafe.prune import run_prune
from flowsafe.snapshots import list_snapshots
from flowsafe.status import run_status


@app.command()
def init(
    site: Annotated[Path | None, typer.Option(
        "--site", help="The ITFlow install folder (leave out to attach to --repo only)."
    )] = None,
    name: Annotated[str | None, typer.Option(help="Site name (default: folder name).")] = None,
    repo: Annotated[str | None, typer.Option(
        help="Repository: a path, or s3:/sftp:/rest:/b2: URL (default /var/backups/flowsafe)."
    )] = None,
    repo_password_file: Annotated[Path | None, typer.Option(
        help="Existing file with the repository password (default: generate one)."
    )] = None,
    state_dir: Annotated[Path | None, typer.Option(
        help="Where flowsafe keeps staging, locks and cache (default /var/lib/flowsafe)."
    )] = None,
    db_socket: Annotated[str | None, typer.Option(help="MariaDB socket override.")] = None,
    db_user: Annotated[str | None, typer.Option(help="MariaDB user override.")] = None,
    db_password_file: Annotated[Path | None, typer.Option(
        help="File with the password for --db-user."
    )] = None,
) -> None:
    """Read an ITFlow install, create or attach to the repository, write the config."""
    path = config_path(STATE.config_file)
    result = run_init(path, InitOptions(
        site_path=site, name=name, repo_url=repo, repo_password_file=repo_password_file,
        state_dir=state_dir,
        database=DatabaseSettings(socket=db_socket, user=db_user, password_file=db_password_file),
    ))
    action = "Created" if result.repository_created else "Attached to"
    if result.site:
        render.out.print(
            f"Site [bold]{result.site}[/] (ITFlow {result.app_version or 'unknown'}, schema "
            f"{result.schema_version or 'unknown'}) configured in {result.config_path}."
        )
    render.out.print(f"{action} the restic repository {result.repository_url}.")
    if result.password_generated:
        render.out.print(
            f"[bold yellow]The repository password is in {result.password_file}.[/] Store a copy "
            "OFF this machine now (password manager, printed sheet): without it the backups "
            "cannot be read, and it dies with this VM."
        )


@app.command()
def backup(
    site: SiteOpt = None,
    reason: Annotated[str, typer.Option(
        help="Why: manual, nightly, pre-update, post-update, ..."
    )] = "manual",
    json_out: JsonOpt = False,
) -> None:
    """Take one consistent snapshot: files + database + manifest."""
    config = load()
    with render.progress_bars(enabled=not json_out) as bars:
        result = run_backup(config, site, reason, bars)
    if json_out:
        render.print_json(result)
    else:
        render.show_backup(result)


@app.command()
def snapshots(site: SiteOpt = None, json_out: JsonOpt = False) -> None:
    """List the site's snapshots, newest last."""
    rows = list_snapshots(load(), site)
    if json_out:
        render.print_json(rows)
    else:
        render.show_snapshots(rows)


@app.command()
def prune(
    site: SiteOpt = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Show, remove nothing.")] = False,
    json_out: JsonOpt = False,
) -> None:
    """Apply the retention policy (restic forget + prune), per site and repository."""
    results = run_prune(load(), site, dry_run=dry_run)
    if json_out:
        render.print_json(results)
        if any(result.error for result in results):
            raise typer.Exit(EXIT_FAILED)
        return
    render.show_prune(results)
    if any(result.error for result in results):
        raise typer.Exit(EXIT_FAILED)


@app.command()
def status(
    site: SiteOpt = None,
    all_sites: Annotated[bool, typer.Option(
        "--all", help="Every site found in the repositories, not only those configured here."
    )] = False,
    prometheus: Annotated[Path | None, typer.Option(
        "--prometheus", help="Also write node-exporter textfile metrics to this file."
    )] = None,
    json_out: JsonOpt = False,
) -> None:
    """Health per site and repository; exits 1 when a backup or the last good drill is
    older than the configured limit (warnings do not change the exit code)."""
    rows = run_status(load(), site, all_sites, prometheus)
    if json_out:
        render.print_json(rows)
    else:
        render.show_status(rows)
    if not all(row.ok for row in rows):
        raise typer.Exit(EXIT_FAILED)


@app.command()
def demo() -> None:
    """A guided tour on a built-in sample site, in a temp folder (cleans up)."""
    from flowsafe.demo import run_demo

    with render.progress_bars() as bars:
        run_demo(bars)
