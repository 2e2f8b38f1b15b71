"""Commands that put a backup back: restore (in place or elsewhere), undo, restore-file."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from flowsafe import render
from flowsafe.cli.app import app
from flowsafe.cli.common import (
    CORES,
    JobsOpt,
    JsonOpt,
    SigningKeyOpt,
    SiteOpt,
    SnapshotArg,
    TrustUnsignedOpt,
    YesOpt,
    ask,
    load,
    trust,
)
from flowsafe.errors import EXIT_FAILED, ConfigError
from flowsafe.itflow.config_php import base_url_value
from flowsafe.manifest import Manifest
from flowsafe.mariadb.connection import DbTarget
from flowsafe.restore.plan import Plan, RestoreOptions
from flowsafe.restore.run import (
    ElsewhereOptions,
    run_restore,
    run_restore_elsewhere,
    run_restore_file,
    run_undo,
)
from flowsafe.secret import Secret
from flowsafe.swap.journal import Journal


@app.command()
def restore(
    snapshot: SnapshotArg,
    site: SiteOpt = None,
    db_only: Annotated[bool, typer.Option("--db-only", help="Only the database.")] = False,
    files_only: Annotated[bool, typer.Option("--files-only", help="Only the files.")] = False,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Print the plan, change nothing.")]
    = False,
    force: Annotated[bool, typer.Option(
        "--force", help="Restore even when the schema guard refuses (the plan says the risk)."
    )] = False,
    no_safety_backup: Annotated[bool, typer.Option(
        "--no-safety-backup", help="Skip the pre-restore backup of the current state."
    )] = False,
    yes: YesOpt = False,
    jobs: JobsOpt = CORES,
    to_path: Annotated[Path | None, typer.Option(
        help="Restore elsewhere: a new folder for the site (with --to-db)."
    )] = None,
    to_db: Annotated[str | None, typer.Option(
        help="Restore elsewhere: a new database name (with --to-path)."
    )] = None,
    db_host: Annotated[str, typer.Option(help="With --to-db: server ('localhost' = socket).")]
    = "localhost",
    db_port: Annotated[int, typer.Option(help="With --to-db: TCP port.")] = 3306,
    db_socket: Annotated[str | None, typer.Option(help="With --to-db: socket path.")] = None,
    db_user: Annotated[str, typer.Option(
        help="With --to-db: the application account written into config.php (created with "
             "a random password unless --db-password-file names its password).")]
    = "itflow",
    db_password_file: Annotated[Path | None, typer.Option(
        help="With --to-db: file holding the existing --db-user's password."
    )] = None,
    replace_existing: Annotated[bool, typer.Option(
        "--replace-existing", help="With --to-db: drop what the database already holds.")]
    = False,
    base_url: Annotated[str | None, typer.Option(
        help="With --to-path: the new $config_base_url (e.g. itflow.example.com).")] = None,
    include_safety: Annotated[bool, typer.Option(
        "--include-safety", help="Let 'latest' be a pre-restore/pre-rewrap/pre-update "
                                 "safety snapshot too.")] = False,
    trust_unsigned: TrustUnsignedOpt = False,
    signing_key_file: SigningKeyOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Restore a site in place (plan, pre-restore backup, scratch build, swap), or elsewhere.
    With --json the plan and the result (with where the time went) are one JSON object."""
    if json_out and not (yes or dry_run):
        raise ConfigError("--json cannot ask for confirmation: add --yes (or --dry-run)")
    config = load()
    trusting = trust(trust_unsigned, signing_key_file)
    if base_url is not None and to_path is None:
        raise ConfigError("--base-url goes with --to-path (a restore in place keeps the site's)")
    if (to_path is None) != (to_db is None):
        raise ConfigError("--to-path and --to-db go together: give both to restore elsewhere")
    if to_path is not None and to_db is not None:
        password = Secret.from_file(db_password_file) if db_password_file else Secret("")
        target = DbTarget(database=to_db, host=db_host, port=db_port, socket=db_socket,
                          user=db_user, password=password)
        elsewhere = ElsewhereOptions(snapshot, to_path, to_db, target,
                                     existing_account=db_password_file is not None,
                                     replace_existing=replace_existing, jobs=jobs,
                                     trust=trusting,
                                     base_url=base_url_value(base_url) if base_url else None)

        def approve(options: ElsewhereOptions, manifest: Manifest) -> bool:
            if not json_out:
                render.show_elsewhere_plan(options, manifest)
            return not dry_run and ask("Restore?", yes)  # a dry run never asks

        with render.progress_bars() as bars:
            done = run_restore_elsewhere(config, site, elsewhere, approve, bars)
        if dry_run:
            return
        if done is None:
            raise typer.Exit(EXIT_FAILED)
        if json_out:
            render.print_json(done)
        else:
            render.show_elsewhere(done)
        return
    options = RestoreOptions(snapshot, db_only, files_only, dry_run, force,
                             not no_safety_backup, jobs, include_safety, trusting)

    def confirm(plan: Plan) -> bool:
        if not json_out:
            render.show_plan(plan)
        return ask("Go ahead with this restore?", yes)

    with render.progress_bars() as bars:
        result = run_restore(config, site, options, confirm, bars)
    if json_out:
        render.print_json(result)
    elif dry_run:
        render.show_plan(result.plan)
    elif result.done:
        render.show_restore(result)
    if not result.done and not dry_run:
        render.err.print("restore cancelled; nothing changed")
        raise typer.Exit(EXIT_FAILED)


@app.command()
def undo(
    site: SiteOpt = None,
    purge: Annotated[bool, typer.Option(
        "--purge", help="Delete the kept rollback state instead of swapping it back."
    )] = False,
    forget: Annotated[bool, typer.Option(
        "--forget", help="Discard a restore journal that no longer matches what is on disk "
                         "(after a repair by hand); touches nothing else.")] = False,
    yes: YesOpt = False,
) -> None:
    """Swap back what the last restore replaced (again: redo), --purge it, or --forget it."""
    if purge and forget:
        raise ConfigError("--purge and --forget exclude each other: --purge deletes the kept "
                          "state, --forget only drops the journal")

    def confirm(kept: Journal) -> bool:
        render.show_rollback(kept, purge)
        return ask("Delete it for good?" if purge else "Swap it back?", yes)

    result = run_undo(load(), site, purge_only=purge, forget=forget, confirm=confirm)
    if result is None:
        render.err.print("cancelled; nothing changed")
        raise typer.Exit(EXIT_FAILED)
    render.show_undo(result)


@app.command("restore-file")
def restore_file(
    snapshot: SnapshotArg,
    path: Annotated[str, typer.Argument(
        help="File or folder inside the site, e.g. uploads/clients/12.", show_default=False
    )],
    to: Annotated[Path, typer.Option("--to", help="Folder to put it in (not production).")],
    site: SiteOpt = None,
    trust_unsigned: TrustUnsignedOpt = False,
    signing_key_file: SigningKeyOpt = None,
) -> None:
    """Restore one file or folder of a snapshot into any folder, never over production."""
    dest = run_restore_file(load(), site, snapshot, path, to,
                            trust(trust_unsigned, signing_key_file))
    render.out.print(f"Restored {render.esc(path)} to {render.esc(dest)}")

