"""The command line: parse options, call one ``run_*`` function, render. No logic here.

Exit codes: 0 ok, 1 failed, 2 usage or configuration error, 3 verification
found a problem (see errors.py).
"""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path
from typing import Annotated

import typer

from flowsafe import __version__, render
from flowsafe.backup import run_backup
from flowsafe.config import Config, DatabaseSettings, config_path, load_config
from flowsafe.drill.run import DrillOptions, run_drill, run_drill_all
from flowsafe.errors import EXIT_FAILED, EXIT_VERIFY, ConfigError, FlowsafeError
from flowsafe.init import InitOptions, run_init
from flowsafe.keys.run import (
    KeyReport,
    KeySource,
    run_escrow,
    run_export,
    run_rewrap,
    run_shares,
    run_sheet,
    run_unwrap,
    run_verify,
)
from flowsafe.keys.source import read_key_file
from flowsafe.manifest import Manifest
from flowsafe.mariadb.connection import DbTarget
from flowsafe.prune import run_prune
from flowsafe.restore.journal import Journal
from flowsafe.restore.plan import Plan, RestoreOptions
from flowsafe.restore.run import (
    ElsewhereOptions,
    run_restore,
    run_restore_elsewhere,
    run_restore_file,
    run_undo,
)
from flowsafe.secret import Secret
from flowsafe.snapshots import list_snapshots
from flowsafe.status import run_status

app = typer.Typer(
    help="Complete, consistent, tested and restorable backups of ITFlow, stored with restic.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


class State:
    """Global options, shared by every command."""

    config_file: Path | None = None


STATE = State()

CORES = os.cpu_count() or 2
IdentityOpt = Annotated[Path | None, typer.Option(
    "--age-identity", help="An age identity file that opens the escrowed key.")]
SiteOpt = Annotated[str | None, typer.Option("--site", help="Site name (default: the only one).")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Machine-readable output.")]


def _config() -> Config:
    return load_config(config_path(STATE.config_file))


def _version(value: bool) -> None:
    if value:
        print(f"flowsafe {__version__}")
        raise typer.Exit()


@app.callback()
def main_options(
    config: Annotated[Path | None, typer.Option(
        "--config", help="Config file (default $FLOWSAFE_CONFIG or /etc/flowsafe/flowsafe.toml)."
    )] = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Debug logging.")] = False,
    version: Annotated[bool, typer.Option(
        "--version", callback=_version, is_eager=True, help="Show the version."
    )] = False,
) -> None:
    """Global options."""
    STATE.config_file = config
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )


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
    config = _config()
    with render.progress_bars(enabled=not json_out) as bars:
        result = run_backup(config, site, reason, bars)
    if json_out:
        render.print_json(result)
    else:
        render.show_backup(result)


@app.command()
def snapshots(site: SiteOpt = None, json_out: JsonOpt = False) -> None:
    """List the site's snapshots, newest last."""
    rows = list_snapshots(_config(), site)
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
    """Apply the retention policy (restic forget + prune), per site."""
    results = run_prune(_config(), site, dry_run=dry_run)
    if json_out:
        render.print_json(results)
        return
    for result in results:
        verb = "would remove" if result.dry_run else "removed"
        render.out.print(f"site {result.site}: keeps {len(result.kept)}, {verb} "
                         f"{len(result.removed)} snapshots")


@app.command()
def status(site: SiteOpt = None, json_out: JsonOpt = False) -> None:
    """Health per site; exits 1 when a backup is older than the configured limit."""
    rows = run_status(_config(), site)
    if json_out:
        render.print_json(rows)
    else:
        render.show_status(rows)
    if not all(row.ok for row in rows):
        raise typer.Exit(EXIT_FAILED)


def _confirm(question: str, yes: bool) -> bool:
    """Ask unless ``--yes``; without a terminal to ask on, demand ``--yes``."""
    if yes:
        return True
    if not sys.stdin.isatty():
        raise ConfigError("no terminal to confirm on: pass --yes to proceed")
    return typer.confirm(question, default=False)


SnapshotArg = Annotated[str, typer.Argument(
    help="Snapshot id, unique id prefix, or 'latest'.", show_default=False
)]
YesOpt = Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")]
JobsOpt = Annotated[int, typer.Option(
    "--jobs", min=1, help="Parallel table loaders (default: number of cores)."
)]


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
    db_user: Annotated[str, typer.Option(help="With --to-db: user (also written to config.php).")]
    = "root",
    db_password_file: Annotated[Path | None, typer.Option(
        help="With --to-db: file holding that user's password."
    )] = None,
) -> None:
    """Restore a site in place (plan, pre-restore backup, scratch build, swap), or elsewhere."""
    config = _config()
    if (to_path is None) != (to_db is None):
        raise ConfigError("--to-path and --to-db go together: give both to restore elsewhere")
    if to_path is not None and to_db is not None:
        password = Secret.from_file(db_password_file) if db_password_file else Secret("")
        target = DbTarget(database=to_db, host=db_host, port=db_port, socket=db_socket,
                          user=db_user, password=password)
        elsewhere = ElsewhereOptions(snapshot, to_path, target, jobs)

        def ask(options: ElsewhereOptions, manifest: Manifest) -> bool:
            render.show_elsewhere_plan(options, manifest)
            return _confirm("Restore?", yes)

        with render.progress_bars() as bars:
            done = run_restore_elsewhere(config, site, elsewhere, ask, bars)
        if done is None:
            raise typer.Exit(EXIT_FAILED)
        render.show_elsewhere(done)
        return
    options = RestoreOptions(snapshot, db_only, files_only, dry_run, force,
                             not no_safety_backup, jobs)

    def confirm(plan: Plan) -> bool:
        render.show_plan(plan)
        return not dry_run and _confirm("Go ahead with this restore?", yes)

    with render.progress_bars() as bars:
        result = run_restore(config, site, options, confirm, bars)
    if dry_run:
        return
    if not result.done:
        render.err.print("restore cancelled; nothing changed")
        raise typer.Exit(EXIT_FAILED)
    render.show_restore(result)


@app.command()
def undo(
    site: SiteOpt = None,
    purge: Annotated[bool, typer.Option(
        "--purge", help="Delete the kept rollback state instead of swapping it back."
    )] = False,
    yes: YesOpt = False,
) -> None:
    """Swap back what the last restore replaced (or --purge the kept state)."""

    def confirm(kept: Journal) -> bool:
        render.show_rollback(kept, purge)
        return _confirm("Delete it for good?" if purge else "Swap it back?", yes)

    result = run_undo(_config(), site, purge_only=purge, confirm=confirm)
    if result is None:
        render.err.print("cancelled; nothing changed")
        raise typer.Exit(EXIT_FAILED)
    verb = "Deleted" if result.purged else "Swapped back"
    render.out.print(f"{verb} the state replaced by the restore of "
                     f"{render.when(result.restore_time)} (site {result.site}).")


@app.command("restore-file")
def restore_file(
    snapshot: SnapshotArg,
    path: Annotated[str, typer.Argument(
        help="File or folder inside the site, e.g. uploads/clients/12.", show_default=False
    )],
    to: Annotated[Path, typer.Option("--to", help="Folder to put it in (not production).")],
    site: SiteOpt = None,
) -> None:
    """Restore one file or folder of a snapshot into any folder, never over production."""
    dest = run_restore_file(_config(), site, snapshot, path, to)
    render.out.print(f"Restored {path} to {dest}")


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
    json_out: JsonOpt = False,
) -> None:
    """Prove a backup restores: private MariaDB, temp folder, checks, recorded result.

    Exit 0 when every check passes, 3 when one fails, 1 when the drill could not run.
    """
    config = _config()
    if key_file is not None:
        read_key_file(key_file)  # refuse a loose or malformed key file before any work
    source = KeySource(key_file, age_identity) if key_file or age_identity else None
    options = DrillOptions(snapshot, keep, source, jobs)
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


key_app = typer.Typer(
    help="The master encryption key: unwrap, escrow, verify, print, rewrap.",
    no_args_is_help=True,
)
credentials_app = typer.Typer(help="Stored credentials, for disaster recovery.",
                              no_args_is_help=True)
app.add_typer(key_app, name="key")
app.add_typer(credentials_app, name="credentials")

KeyFileOpt = Annotated[Path | None, typer.Option(
    "--key-file", help="A 0600 file holding the master key.")]
EscrowPassOpt = Annotated[Path | None, typer.Option(
    "--escrow-passphrase-file", help="File with the passphrase the key was escrowed with.")]
SharesOpt = Annotated[Path | None, typer.Option(
    "--shares", help="A file of SLIP-39 mnemonics, one a line.")]
RecipientOpt = Annotated[list[str] | None, typer.Option(
    "--age-recipient", help="age public key (age1...) to seal for; repeatable.")]
PassphraseOpt = Annotated[Path | None, typer.Option(
    "--passphrase-file", help="File with a new passphrase (age passphrase mode, KeePass).")]
SnapshotOpt = Annotated[str | None, typer.Option(
    "--snapshot", help="Use this snapshot's database (in a private MariaDB), not the live one.")]


def _secret(path: Path | None, what: str, option: str) -> Secret:
    """A secret from a file, or typed at the terminal without echo."""
    if path is not None:
        return Secret.from_file(path)
    if not sys.stdin.isatty():
        raise ConfigError(f"no terminal to type {what} on: pass {option}")
    import getpass

    return Secret(getpass.getpass(f"{what}: "))


def _source(key_file: Path | None, identity: Path | None, escrow_pass: Path | None,
            shares: Path | None) -> KeySource:
    return KeySource(key_file, identity, shares,
                     Secret.from_file(escrow_pass) if escrow_pass else None)


def _optional(path: Path | None) -> Secret | None:
    return Secret.from_file(path) if path else None


def _show_key_report(report: KeyReport, json_out: bool) -> None:
    if json_out:
        render.print_json({"site": report.site, "ok": report.ok,
                           "fingerprint_known": report.fingerprint_known,
                           "fingerprint_matches": report.fingerprint_matches,
                           "credentials": report.credentials, "decrypted": report.decrypted,
                           "failed_ids": report.failed_ids,
                           "escrow_record": report.escrow_record})
    else:
        render.show_key_report(report)


@key_app.command("unwrap")
def key_unwrap(
    user: Annotated[str, typer.Option("--user", help="An ITFlow agent's email.")],
    site: SiteOpt = None,
    password_file: Annotated[Path | None, typer.Option(
        help="File with that user's password (default: ask, without echo).")] = None,
    snapshot: SnapshotOpt = None,
    show: Annotated[bool, typer.Option("--show", help="Print the key once.")] = False,
    age_recipient: RecipientOpt = None,
    passphrase_file: PassphraseOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Unwrap the master key with an account password, check it, and escrow it."""
    password = _secret(password_file, f"ITFlow password for {user}", "--password-file")
    with render.progress_bars(enabled=not json_out) as bars:
        report = run_unwrap(_config(), site, user, password, snapshot=snapshot, show=show,
                            recipients=age_recipient or [],
                            passphrase=_optional(passphrase_file), progress=bars)
    _show_key_report(report, json_out)
    if report.shown_key is not None:
        render.out.print(f"Master key: {report.shown_key.reveal()}", highlight=False)


@key_app.command("escrow")
def key_escrow(
    site: SiteOpt = None,
    key_file: KeyFileOpt = None,
    age_identity: IdentityOpt = None,
    escrow_passphrase_file: EscrowPassOpt = None,
    shares: SharesOpt = None,
    age_recipient: RecipientOpt = None,
    passphrase_file: PassphraseOpt = None,
    print_shares: Annotated[str | None, typer.Option(
        "--print-shares", help="Split into SLIP-39 shares, K-of-N (e.g. 2-of-3), and print.")]
    = None,
) -> None:
    """Seal the key with age into the repository, or print it as SLIP-39 shares."""
    config = _config()
    source = _source(key_file, age_identity, escrow_passphrase_file, shares)
    if print_shares:
        parts = print_shares.lower().split("-of-")
        if len(parts) != 2 or not all(p.isdigit() for p in parts):
            raise ConfigError("--print-shares takes K-of-N, e.g. 2-of-3")
        for number, mnemonic in enumerate(
                run_shares(config, site, source, int(parts[0]), int(parts[1])), 1):
            render.out.print(f"Share {number}: {mnemonic}", highlight=False)
        render.out.print(f"Any {parts[0]} of these {parts[1]} shares recover the key. Give "
                         "each to a different person; store none on this machine.")
        return
    record = run_escrow(config, site, source, age_recipient or [], _optional(passphrase_file))
    render.out.print(f"Escrowed the master key in the repository (record {record[:8]}).")


@key_app.command("verify")
def key_verify(
    site: SiteOpt = None,
    key_file: KeyFileOpt = None,
    age_identity: IdentityOpt = None,
    escrow_passphrase_file: EscrowPassOpt = None,
    shares: SharesOpt = None,
    snapshot: SnapshotOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Check a candidate key against the fingerprint and every stored credential (exit 3
    when it does not match or a credential does not decrypt)."""
    with render.progress_bars(enabled=not json_out) as bars:
        report = run_verify(_config(), site, _source(key_file, age_identity,
                                                     escrow_passphrase_file, shares),
                            snapshot, bars)
    _show_key_report(report, json_out)
    if not report.ok:
        raise typer.Exit(EXIT_VERIFY)


@key_app.command("sheet")
def key_sheet(
    out: Annotated[Path, typer.Option("--out", help="The PDF to write (mode 0600).")],
    site: SiteOpt = None,
    repository_password: Annotated[bool, typer.Option(
        "--repository-password/--no-repository-password",
        help="Include the repository password.")] = True,
    key_file: KeyFileOpt = None,
    age_identity: IdentityOpt = None,
    escrow_passphrase_file: EscrowPassOpt = None,
    shares: SharesOpt = None,
) -> None:
    """A printable recovery sheet (repository password and, given a key source, the key)."""
    given = any((key_file, age_identity, escrow_passphrase_file, shares))
    source = _source(key_file, age_identity, escrow_passphrase_file, shares) if given else None
    path = run_sheet(_config(), site, out, repository_password=repository_password,
                     source=source)
    render.out.print(f"Wrote {path} (mode 0600). Print it, lock it away, then delete the "
                     f"file: shred -u {path}")


@key_app.command("rewrap")
def key_rewrap(
    user: Annotated[str, typer.Option("--user", help="The ITFlow user's email.")],
    site: SiteOpt = None,
    key_file: KeyFileOpt = None,
    age_identity: IdentityOpt = None,
    escrow_passphrase_file: EscrowPassOpt = None,
    shares: SharesOpt = None,
    new_password_file: Annotated[Path | None, typer.Option(
        help="File with the new password (default: ask, without echo).")] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Show, change nothing.")] = False,
    yes: YesOpt = False,
) -> None:
    """Give a user who lost their password a new one and a new wrapped copy of the key."""
    new = _secret(new_password_file, f"new ITFlow password for {user}", "--new-password-file")

    def confirm(email: str) -> bool:
        render.out.print(f"Will take a pre-rewrap backup, then set a new password for {email} "
                         "and wrap the master key for it.")
        return _confirm("Go ahead?", yes)

    with render.progress_bars() as bars:
        result = run_rewrap(_config(), site, user,
                            _source(key_file, age_identity, escrow_passphrase_file, shares),
                            new, dry_run=dry_run, confirm=confirm, progress=bars)
    if result is None:
        render.err.print("cancelled; nothing changed")
        raise typer.Exit(EXIT_FAILED)
    if result.dry_run:
        render.out.print(f"Would set a new password and wrapped key for {result.email} "
                         "(after a pre-rewrap backup); nothing changed.")
    else:
        render.out.print(f"{result.email} can log in with the new password and keeps access "
                         f"to credentials (pre-rewrap backup: {str(result.safety_snapshot)[:8]}).")


@credentials_app.command("export")
def credentials_export(
    out: Annotated[Path, typer.Option("--out", help="The file to write (mode 0600).")],
    fmt: Annotated[str, typer.Option("--format", help="kdbx (KeePass 4) or csv (age-encrypted).")]
    = "kdbx",
    site: SiteOpt = None,
    snapshot: SnapshotOpt = None,
    key_file: KeyFileOpt = None,
    age_identity: IdentityOpt = None,
    escrow_passphrase_file: EscrowPassOpt = None,
    shares: SharesOpt = None,
    passphrase_file: PassphraseOpt = None,
    age_recipient: RecipientOpt = None,
) -> None:
    """Decrypt every credential into a KeePass file or an age-encrypted CSV (never plain)."""
    if fmt not in ("kdbx", "csv"):
        raise ConfigError("--format is kdbx or csv")
    passphrase = _optional(passphrase_file)
    if fmt == "kdbx" and passphrase is None:
        passphrase = _secret(None, "new KeePass passphrase", "--passphrase-file")
    with render.progress_bars() as bars:
        result = run_export(_config(), site,
                            _source(key_file, age_identity, escrow_passphrase_file, shares),
                            fmt, out, passphrase=passphrase, recipients=age_recipient or [],
                            snapshot=snapshot, progress=bars)
    render.out.print(f"Exported {result.exported} credentials to {result.path} (mode 0600).")
    if result.failed_ids:
        render.err.print(f"[yellow]warning:[/] {len(result.failed_ids)} credentials did not "
                         f"decrypt with this key (ids {result.failed_ids[:10]}) and were left "
                         "out")
        raise typer.Exit(EXIT_VERIFY)


@app.command()
def demo() -> None:
    """A guided tour on a built-in sample site, in a temp folder (cleans up)."""
    from flowsafe.demo import run_demo

    with render.progress_bars() as bars:
        run_demo(bars)


def main() -> None:
    """Console entry point: one line per error, documented exit codes.

    Typer itself exits 2 on usage errors and honours ``typer.Exit``.
    """
    try:
        app()
    except FlowsafeError as exc:
        render.err.print(f"[red]error:[/] {exc}", highlight=False)
        sys.exit(exc.exit_code)
    except OSError as exc:
        render.err.print(f"[red]error:[/] {exc}", highlight=False)
        sys.exit(EXIT_FAILED)
