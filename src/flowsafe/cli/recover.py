"""``flowsafe recover``: a site back on a new server from its repository, in one command."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from flowsafe import render
from flowsafe.cli.app import app
from flowsafe.cli.common import (
    CORES,
    STATE,
    EscrowPassOpt,
    IdentityOpt,
    JobsOpt,
    JsonOpt,
    KeyFileOpt,
    SharesOpt,
    SigningKeyOpt,
    TrustUnsignedOpt,
    YesOpt,
    ask,
    key_source,
    trust,
)
from flowsafe.config import config_path
from flowsafe.errors import EXIT_FAILED, ConfigError
from flowsafe.recover.run import APP_USER, RecoverOptions, RecoverPlan, run_recover


@app.command()
def recover(
    repo: Annotated[str, typer.Option(
        "--repo", help="The site's repository (the recovery sheet names it, off-site first).",
        show_default=False)],
    repo_password_file: Annotated[Path, typer.Option(
        help="A 0600 file holding the repository password.", show_default=False)],
    site: Annotated[str | None, typer.Option(
        "--site", help="The site to recover (default: the only one the repository holds).")]
    = None,
    snapshot: Annotated[str, typer.Option(
        "--snapshot", help="Snapshot id, unique prefix, or 'latest'.")] = "latest",
    to: Annotated[Path, typer.Option("--to", help="The folder ITFlow goes to (new or empty).")]
    = Path("/var/www/itflow"),
    database: Annotated[str, typer.Option(
        "--database", help="The database (created, or an empty one used).")] = "itflow",
    db_user: Annotated[str, typer.Option(
        help="The application account written into config.php (created with a random "
             "password and rights on --database only).")] = APP_USER,
    db_socket: Annotated[str | None, typer.Option(
        help="The MariaDB server's socket (default: /run/mysqld/mysqld.sock); root must "
             "answer there.")] = None,
    base_url: Annotated[str | None, typer.Option(
        help="This server's name for ITFlow ($config_base_url), e.g. itflow.example.com.")]
    = None,
    web_user: Annotated[str | None, typer.Option(
        help="Who owns the files and runs PHP (default: the owner the backup recorded if "
             "that user exists here, else www-data).")] = None,
    key_file: KeyFileOpt = None,
    age_identity: IdentityOpt = None,
    escrow_passphrase_file: EscrowPassOpt = None,
    shares: SharesOpt = None,
    replace_existing: Annotated[bool, typer.Option(
        "--replace-existing", help="Drop what the database already holds.")] = False,
    state_dir: Annotated[Path | None, typer.Option(
        help="flowsafe's state folder (default: the config's, else /var/lib/flowsafe).")]
    = None,
    jobs: JobsOpt = CORES,
    trust_unsigned: TrustUnsignedOpt = False,
    signing_key_file: SigningKeyOpt = None,
    yes: YesOpt = False,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Check and print the plan, change "
                                                            "nothing.")] = False,
    json_out: JsonOpt = False,
) -> None:
    """Rebuild a site on a new server: checks, database and application account, files,
    owner, checks of the result, flowsafe's config and a post-recover backup; then what is
    left by hand. Re-run after an interruption to finish. Exit 3 when a check fails (the
    restore stays)."""
    if json_out and not (yes or dry_run):
        raise ConfigError("--json cannot ask for confirmation: add --yes (or --dry-run)")
    given = any((key_file, age_identity, escrow_passphrase_file, shares))
    options = RecoverOptions(
        repo, repo_password_file, site, snapshot, to, database, db_user, db_socket, base_url,
        web_user, key_source(key_file, age_identity, escrow_passphrase_file, shares)
        if given else None, replace_existing, dry_run, state_dir, jobs,
        trust(trust_unsigned, signing_key_file))

    def confirm(plan: RecoverPlan) -> bool:
        if not json_out:
            render.show_recover_plan(plan)
        return ask("Recover?", yes)

    with render.progress_bars(enabled=not json_out) as bars:
        result = run_recover(config_path(STATE.config_file), options, confirm, bars)
    if json_out:
        render.print_json(result)
    elif dry_run:
        render.show_recover_plan(result.plan)
    else:
        render.show_recover(result)
    if not result.done and not dry_run:
        render.err.print("recover cancelled; nothing changed")
        raise typer.Exit(EXIT_FAILED)
