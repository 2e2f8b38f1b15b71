"""Commands that set up and watch sites: init, backup, snapshots, prune, status, log, demo.

backup, prune and status act on every configured site unless ``--site`` names one
(flowsafe.multisite): each site's result is shown as it finishes, and the run ends with
one line per failed site.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from flowsafe import multisite, render, runs
from flowsafe.backup import run_backup
from flowsafe.cli.app import app
from flowsafe.cli.common import STATE, JsonOpt, SiteOpt, SitesOpt, finish, load, show_each
from flowsafe.config import DatabaseSettings, config_path
from flowsafe.errors import EXIT_FAILED, ConfigError
from flowsafe.init import InitOptions, run_init
from flowsafe.prune import PruneResult, prune_site
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
    esc = render.esc
    if result.site:
        render.out.print(
            f"Site [bold]{esc(result.site)}[/] (ITFlow {esc(result.app_version or 'unknown')}, "
            f"schema {esc(result.schema_version or 'unknown')}) configured in "
            f"{esc(result.config_path)}."
        )
    render.out.print(f"{action} the restic repository {esc(result.repository_url)}.")
    if result.password_generated:
        render.out.print(
            f"[bold yellow]The repository password is in {esc(result.password_file)}.[/] "
            "Store a copy "
            "OFF this machine now (password manager, printed sheet): without it the backups "
            "cannot be read, and it dies with this VM."
        )
    if result.signing_key_made:
        render.out.print(
            f"Snapshots are signed with the key in {esc(result.signing_key_file)}: escrow it "
            "with the master key (`flowsafe key unwrap` or `key escrow`, or `key sheet`) so a "
            "new server can trust this site's snapshots.")
    if result.admin_note:
        render.out.print(f"Restores: {esc(result.admin_note)}.")
    if result.offsite_note:
        render.out.print(f"[bold yellow]Warning:[/] {esc(result.offsite_note)}.")


@app.command()
def backup(
    site: SitesOpt = None,
    reason: Annotated[str, typer.Option(
        help="Why: manual, nightly, pre-update, post-update, ..."
    )] = "manual",
    json_out: JsonOpt = False,
) -> None:
    """Take one consistent snapshot per site: files + database + manifest.

    Every configured site, one after another, unless --site names one.
    """
    config = load()
    with render.progress_bars(enabled=not json_out) as bars:
        run = multisite.each_site(
            config, site, "backup", lambda name: run_backup(config, name, reason, bars),
            judge=lambda result: multisite.Finding(snapshot_id=result.snapshot_id),
            on_done=show_each(render.show_backup, json_out))
    if json_out and len(run.outcomes) > 1:
        render.print_json(run.results)
    elif json_out and run.results:
        render.print_json(run.results[0])  # one site: one object, as before several sites
    finish(run)


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
    site: SitesOpt = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Show, remove nothing.")] = False,
    json_out: JsonOpt = False,
) -> None:
    """Apply the retention policy (restic forget + prune) to every site, or to --site, in
    each of its repositories; every removed snapshot is named."""
    config = load()

    def judge(results: list[PruneResult]) -> multisite.Finding:
        failed = [f"repository '{r.repository}': {r.error}" for r in results if r.error]
        return multisite.Finding("; ".join(failed) or None)

    run = multisite.each_site(config, site, "prune",
                              lambda name: prune_site(config, name, dry_run=dry_run),
                              judge=judge, on_done=show_each(render.show_prune, json_out))
    if json_out:
        render.print_json([r for results in run.results for r in results])
    finish(run)


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
        for row in rows:
            render.show_status(row)
    render.show_failures((row.site, row.problem) for row in rows if not row.ok)
    if not all(row.ok for row in rows):
        raise typer.Exit(EXIT_FAILED)


@app.command("log")
def log_(
    site: SitesOpt = None,
    limit: Annotated[int, typer.Option("--limit", min=1, help="Show the newest N runs.")] = 20,
    json_out: JsonOpt = False,
) -> None:
    """The runs recorded on this machine (backup, prune, drill, update, restore), newest
    last, with result, duration and error."""
    config = load()
    entries = runs.history(config.state_dir, site, limit)
    if site is not None and not entries and site not in config.sites:
        raise ConfigError(f"no site named '{site}' in the config and no runs recorded for it "
                          f"(known: {', '.join(config.sites) or 'none'})")
    if json_out:
        render.print_json(entries)
    else:
        render.show_log(entries)


@app.command()
def demo() -> None:
    """A guided tour on a built-in sample site, in a temp folder (cleans up)."""
    from flowsafe.demo import run_demo

    with render.progress_bars() as bars:
        run_demo(bars)
