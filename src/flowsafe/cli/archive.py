"""``flowsafe archive ...``: ITFlow's own backup archives (inspect, import, export)."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Annotated

import typer

from flowsafe import render
from flowsafe.archive.export import ExportOptions, run_export
from flowsafe.archive.importer import ImportOptions, run_import
from flowsafe.archive.inspect import run_inspect
from flowsafe.cli.app import app
from flowsafe.cli.common import (
    STATE,
    ForceSharedOpt,
    JsonOpt,
    SigningKeyOpt,
    SiteOpt,
    SnapshotArg,
    TrustUnsignedOpt,
    load,
    optional_secret,
    trust,
)
from flowsafe.config import Config, config_path
from flowsafe.errors import EXIT_VERIFY
from flowsafe.paths import refuse_shared_folder

archive_app = typer.Typer(help="ITFlow's own backup archives: inspect, import, export.",
                          no_args_is_help=True)
app.add_typer(archive_app, name="archive")

BackupKeyOpt = Annotated[Path | None, typer.Option(
    "--backup-key-file",
    help="A 0600 file holding ITFlow's backup key (default: $config_backup_key in the "
    "site's config.php).")]


def _config_if_any(site: str | None) -> Config | None:
    """The config, or None when there is none and no site was named (a bare archive)."""
    return load() if site is not None or config_path(STATE.config_file).exists() else None


@archive_app.command("inspect")
def archive_inspect(
    file: Annotated[Path, typer.Argument(help="An ITFlow backup archive or SQL dump.",
                                         show_default=False)],
    site: SiteOpt = None,
    backup_key_file: BackupKeyOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Name an ITFlow backup's form, show version.txt, verify every entry and checksum.

    Exit 0 when everything verifies, 3 when a checksum or an entry fails (or the form
    cannot be trusted), 2 for a wrong or missing key or a file that is no ITFlow backup.
    """
    with render.progress_bars(enabled=not json_out) as bars:
        report = run_inspect(_config_if_any(site), site, backup_key_file, file, bars)
    if json_out:
        render.print_json({"ok": report.ok, **dataclasses.asdict(report)})
    else:
        render.show_archive(report)
    if not report.ok:
        render.err.print(f"[red]error:[/] {report.problems[0]}", highlight=False,
                         soft_wrap=True)
        raise typer.Exit(EXIT_VERIFY)


@archive_app.command("export")
def archive_export(
    snapshot: SnapshotArg,
    out: Annotated[Path, typer.Option(
        "--out", help="The archive to write (a folder: ITFlow's own file name inside it).")],
    site: SiteOpt = None,
    backup_key_file: BackupKeyOpt = None,
    trust_unsigned: TrustUnsignedOpt = False,
    signing_key_file: SigningKeyOpt = None,
    json_out: JsonOpt = False,
    force: ForceSharedOpt = False,
) -> None:
    """Write a snapshot as an ITFlow 26.08 full archive that ITFlow's own restore reads.

    The key comes from --backup-key-file or the site's config.php. Exit 3 when the
    snapshot's dump does not match its manifest; nothing is left behind on any failure.
    """
    refuse_shared_folder(out, "the archive", force)
    with render.progress_bars(enabled=not json_out) as bars:
        result = run_export(load(), site, ExportOptions(
            snapshot, out, backup_key_file, trust(trust_unsigned, signing_key_file)), bars)
    if json_out:
        render.print_json(result)
    else:
        render.show_export(result)


@archive_app.command("import")
def archive_import(
    files: Annotated[list[Path] | None, typer.Argument(
        help="ITFlow archives (full or master-key) to import.", show_default=False)] = None,
    site: SiteOpt = None,
    all_archives: Annotated[bool, typer.Option(
        "--all", help="Every archive in the site's backup folder (uploads/backups).")] = False,
    force: Annotated[bool, typer.Option(
        "--force", help="Import an archive that looks like another site's.")] = False,
    backup_key_file: BackupKeyOpt = None,
    age_recipient: Annotated[list[str] | None, typer.Option(
        "--age-recipient", help="For a master-key archive: age public key (age1...) to seal "
        "the key for in the escrow; repeatable.")] = None,
    passphrase_file: Annotated[Path | None, typer.Option(
        "--passphrase-file", help="For a master-key archive: seal the key with this "
        "passphrase instead.")] = None,
    json_out: JsonOpt = False,
) -> None:
    """Store ITFlow's own archives as signed flowsafe snapshots (database and uploads/).

    A full archive becomes a snapshot with reason itflow-archive at the archive's time; a
    master-key archive goes into the key escrow, sealed. An archive imported before is
    left alone. Exit 3 when an archive fails verification or its db.sql does not load, 2
    for a wrong key or an archive of another site; nothing is written for that archive.
    """
    options = ImportOptions(tuple(files or ()), all_archives, force, backup_key_file,
                            tuple(age_recipient or ()), optional_secret(passphrase_file))
    with render.progress_bars(enabled=not json_out) as bars:
        outcomes = run_import(load(), site, options, bars)
    if json_out:
        render.print_json(outcomes)
    else:
        render.show_imports(outcomes)
