"""``flowsafe key ...`` and ``flowsafe credentials export``: the master key and what it opens."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from flowsafe import render
from flowsafe.cli.app import app
from flowsafe.cli.common import (
    EscrowPassOpt,
    ForceSharedOpt,
    IdentityOpt,
    JsonOpt,
    KeyFileOpt,
    SharesOpt,
    SigningKeyOpt,
    SiteOpt,
    TrustUnsignedOpt,
    YesOpt,
    ask,
    key_source,
    load,
    optional_secret,
    secret,
    trust,
)
from flowsafe.errors import EXIT_FAILED, EXIT_VERIFY, ConfigError
from flowsafe.keys.run import (
    KeyReport,
    run_escrow,
    run_export,
    run_rewrap,
    run_shares,
    run_sheet,
    run_unwrap,
    run_verify,
)
from flowsafe.paths import refuse_shared_folder

key_app = typer.Typer(
    help="The master encryption key: unwrap, escrow, verify, print, rewrap.",
    no_args_is_help=True, rich_markup_mode=None,
)
credentials_app = typer.Typer(help="Stored credentials, for disaster recovery.",
                              no_args_is_help=True, rich_markup_mode=None)
app.add_typer(key_app, name="key")
app.add_typer(credentials_app, name="credentials")

RecipientOpt = Annotated[list[str] | None, typer.Option(
    "--age-recipient", help="age public key (age1...) to seal for; repeatable.")]
PassphraseOpt = Annotated[Path | None, typer.Option(
    "--passphrase-file", help="File with a new passphrase (age passphrase mode, KeePass).")]
SnapshotOpt = Annotated[str | None, typer.Option(
    "--snapshot", help="Use this snapshot's database (in a private MariaDB), not the live one.")]


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
    trust_unsigned: TrustUnsignedOpt = False,
    signing_key_file: SigningKeyOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Unwrap the master key with an account password, check it, and escrow it."""
    password = secret(password_file, f"ITFlow password for {user}", "--password-file")
    with render.progress_bars(enabled=not json_out) as bars:
        report = run_unwrap(load(), site, user, password, snapshot=snapshot, show=show,
                            recipients=age_recipient or [],
                            passphrase=optional_secret(passphrase_file), progress=bars,
                            trust=trust(trust_unsigned, signing_key_file))
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
    config = load()
    source = key_source(key_file, age_identity, escrow_passphrase_file, shares)
    if print_shares:
        parts = print_shares.lower().split("-of-")
        if len(parts) != 2 or not all(p.isdigit() for p in parts):
            raise ConfigError("--print-shares takes K-of-N, e.g. 2-of-3")
        mnemonics = run_shares(config, site, source, int(parts[0]), int(parts[1]))
        render.out.print(f"# Any {parts[0]} of these {parts[1]} shares recover the key. Give "
                         "each to a different person; store none on this machine. A file of "
                         "these lines (or of any K shares) works with --shares.",
                         markup=False, soft_wrap=True)
        for number, mnemonic in enumerate(mnemonics, 1):
            render.out.print(f"# Share {number} of {parts[1]}:", markup=False)
            render.out.print(mnemonic, markup=False, soft_wrap=True)
        return
    record = run_escrow(config, site, source, age_recipient or [], optional_secret(passphrase_file))
    render.out.print(f"Escrowed the master key in the repository (record {record[:8]}).")


@key_app.command("verify")
def key_verify(
    site: SiteOpt = None,
    key_file: KeyFileOpt = None,
    age_identity: IdentityOpt = None,
    escrow_passphrase_file: EscrowPassOpt = None,
    shares: SharesOpt = None,
    snapshot: SnapshotOpt = None,
    trust_unsigned: TrustUnsignedOpt = False,
    signing_key_file: SigningKeyOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Check a candidate key against the fingerprint and every stored credential (exit 3
    when it does not match or a credential does not decrypt)."""
    with render.progress_bars(enabled=not json_out) as bars:
        report = run_verify(load(), site, key_source(key_file, age_identity,
                                                     escrow_passphrase_file, shares),
                            snapshot, bars, trust(trust_unsigned, signing_key_file))
    _show_key_report(report, json_out)
    if not report.ok:
        raise typer.Exit(EXIT_VERIFY)


@key_app.command("sheet")
def key_sheet(
    out: Annotated[Path, typer.Option("--out", help="The PDF to write (mode 0600).")],
    site: SiteOpt = None,
    repository_password: Annotated[bool, typer.Option(
        "--repository-password/--no-repository-password",
        help="Include the repositories' passwords and backend credentials.")] = True,
    key_file: KeyFileOpt = None,
    age_identity: IdentityOpt = None,
    escrow_passphrase_file: EscrowPassOpt = None,
    shares: SharesOpt = None,
    force: ForceSharedOpt = False,
) -> None:
    """A printable recovery sheet for a new server: the steps, the install command, the one
    `flowsafe recover` line, every repository (off-site first), the last drill, and the
    repository passwords and (given a key source) the master key as text and QR code."""
    refuse_shared_folder(out, "the recovery sheet", force)
    given = any((key_file, age_identity, escrow_passphrase_file, shares))
    source = key_source(key_file, age_identity, escrow_passphrase_file, shares) if given else None
    warnings = run_sheet(load(), site, out, repository_password=repository_password,
                         source=source)
    for warning in warnings:
        render.err.print(f"[yellow]warning:[/] {render.esc(warning)} (also on the sheet)")
    render.out.print(f"Wrote {render.esc(out)} (mode 0600). Print it, lock it away, then delete "
                     f"the file: shred -u {render.esc(out)}")


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
    new = secret(new_password_file, f"new ITFlow password for {user}", "--new-password-file")

    def confirm(email: str) -> bool:
        render.out.print(f"Will take a pre-rewrap backup, then set a new password for "
                         f"{render.esc(email)} and wrap the master key for it.")
        return ask("Go ahead?", yes)

    with render.progress_bars() as bars:
        result = run_rewrap(load(), site, user,
                            key_source(key_file, age_identity, escrow_passphrase_file, shares),
                            new, dry_run=dry_run, confirm=confirm, progress=bars)
    if result is None:
        render.err.print("cancelled; nothing changed")
        raise typer.Exit(EXIT_FAILED)
    if result.dry_run:
        render.out.print(f"Would set a new password and wrapped key for {render.esc(result.email)} "
                         "(after a pre-rewrap backup); nothing changed.")
    else:
        render.out.print(f"{render.esc(result.email)} can log in with the new password and keeps "
                         f"access to credentials (pre-rewrap backup: "
                         f"{str(result.safety_snapshot)[:8]}).")


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
    trust_unsigned: TrustUnsignedOpt = False,
    signing_key_file: SigningKeyOpt = None,
    force: ForceSharedOpt = False,
) -> None:
    """Decrypt every credential into a KeePass file or an age-encrypted CSV (never plain)."""
    if fmt not in ("kdbx", "csv"):
        raise ConfigError("--format is kdbx or csv")
    refuse_shared_folder(out, "the credentials export", force)
    passphrase = optional_secret(passphrase_file)
    if fmt == "kdbx" and passphrase is None:
        passphrase = secret(None, "new KeePass passphrase", "--passphrase-file")
    with render.progress_bars() as bars:
        result = run_export(load(), site,
                            key_source(key_file, age_identity, escrow_passphrase_file, shares),
                            fmt, out, passphrase=passphrase, recipients=age_recipient or [],
                            snapshot=snapshot, progress=bars,
                            trust=trust(trust_unsigned, signing_key_file))
    render.out.print(f"Exported {result.exported} credentials to {render.esc(result.path)} "
                     "(mode 0600).")
    if result.failed_ids:
        render.err.print(f"[yellow]warning:[/] {len(result.failed_ids)} credentials did not "
                         f"decrypt with this key (ids {result.failed_ids[:10]}) and were left "
                         "out")
        raise typer.Exit(EXIT_VERIFY)
