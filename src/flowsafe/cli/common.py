"""What every command module shares: the global state, common options, confirmation
and secrets typed at a terminal."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer

from flowsafe import render
from flowsafe.catalog import TrustOptions
from flowsafe.config import Config, config_path, load_config
from flowsafe.errors import ConfigError
from flowsafe.keys.run import KeySource
from flowsafe.multisite import FleetRun, SiteOutcome
from flowsafe.secret import Secret

T = TypeVar("T")


class State:
    """Global options, shared by every command."""

    config_file: Path | None = None


STATE = State()

CORES = os.cpu_count() or 2
IdentityOpt = Annotated[Path | None, typer.Option(
    "--age-identity", help="An age identity file that opens the escrowed key.")]
SiteOpt = Annotated[str | None, typer.Option("--site", help="Site name (default: the only one).")]
SitesOpt = Annotated[str | None, typer.Option(
    "--site", help="Only this site (default: every site in the config).")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Machine-readable output.")]
SnapshotArg = Annotated[str, typer.Argument(
    help="Snapshot id, unique id prefix, or 'latest'.", show_default=False
)]
ForceSharedOpt = Annotated[bool, typer.Option(
    "--force", help="Write even into a folder every user may list.")]
YesOpt = Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")]
JobsOpt = Annotated[int, typer.Option(
    "--jobs", min=1, help="Parallel table loaders (default: number of cores)."
)]


KeyFileOpt = Annotated[Path | None, typer.Option(
    "--key-file", help="A 0600 file holding the master key.")]
EscrowPassOpt = Annotated[Path | None, typer.Option(
    "--escrow-passphrase-file", help="File with the passphrase the key was escrowed with.")]
SharesOpt = Annotated[Path | None, typer.Option(
    "--shares", help="A file of SLIP-39 mnemonics, one a line, as `key escrow --print-shares` "
    "prints them ('#' lines and a 'Share N:' prefix are ignored).")]
TrustUnsignedOpt = Annotated[bool, typer.Option(
    "--trust-unsigned",
    help="Accept a snapshot without a valid signature (you know where it came from).")]
SigningKeyOpt = Annotated[list[Path] | None, typer.Option(
    "--signing-key-file",
    help="A 0600 file with a site's snapshot signing key (the recovery sheet has it).")]


def key_source(key_file: Path | None, identity: Path | None, escrow_pass: Path | None,
               shares: Path | None) -> KeySource:
    """The master key's source the command line names (``load_key`` wants exactly one)."""
    return KeySource(key_file, identity, shares,
                     Secret.from_file(escrow_pass) if escrow_pass else None)


def trust(unsigned: bool, key_files: list[Path] | None) -> TrustOptions:
    """The snapshot trust the command line asks for."""
    return TrustOptions(unsigned=unsigned, key_files=tuple(key_files or ()))


def load() -> Config:
    """The config named by --config, $FLOWSAFE_CONFIG or the default path."""
    return load_config(config_path(STATE.config_file))


def ask(question: str, yes: bool) -> bool:
    """Ask unless ``--yes``; without a terminal to ask on, demand ``--yes``."""
    if yes:
        return True
    if not sys.stdin.isatty():
        raise ConfigError("no terminal to confirm on: pass --yes to proceed")
    return typer.confirm(question, default=False)


def secret(path: Path | None, what: str, option: str) -> Secret:
    """A secret from a file, or typed at the terminal without echo."""
    if path is not None:
        return Secret.from_file(path)
    if not sys.stdin.isatty():
        raise ConfigError(f"no terminal to type {what} on: pass {option}")
    import getpass

    return Secret(getpass.getpass(f"{what}: "))


def optional_secret(path: Path | None) -> Secret | None:
    return Secret.from_file(path) if path else None


def show_each(show: Callable[[T], None], json_out: bool
              ) -> Callable[[SiteOutcome, T | None], None]:
    """A multisite ``on_done`` that shows each site's result as it finishes (not with --json)."""

    def done(outcome: SiteOutcome, result: T | None) -> None:
        if result is not None and not json_out:
            show(result)

    return done


def finish(run: FleetRun[Any]) -> None:
    """End a several-site run: one line per failed site, then its exit code."""
    render.show_failures((o.site, o.error) for o in run.failed)
    if run.exit_code:
        raise typer.Exit(run.exit_code)
