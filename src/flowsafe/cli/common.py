"""What every command module shares: the global state, common options, confirmation
and secrets typed at a terminal."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated

import typer

from flowsafe.catalog import TrustOptions
from flowsafe.config import Config, config_path, load_config
from flowsafe.errors import ConfigError
from flowsafe.secret import Secret


class State:
    """Global options, shared by every command."""

    config_file: Path | None = None


STATE = State()

CORES = os.cpu_count() or 2
IdentityOpt = Annotated[Path | None, typer.Option(
    "--age-identity", help="An age identity file that opens the escrowed key.")]
SiteOpt = Annotated[str | None, typer.Option("--site", help="Site name (default: the only one).")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Machine-readable output.")]
SnapshotArg = Annotated[str, typer.Argument(
    help="Snapshot id, unique id prefix, or 'latest'.", show_default=False
)]
YesOpt = Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")]
JobsOpt = Annotated[int, typer.Option(
    "--jobs", min=1, help="Parallel table loaders (default: number of cores)."
)]


TrustUnsignedOpt = Annotated[bool, typer.Option(
    "--trust-unsigned",
    help="Accept a snapshot without a valid signature (you know where it came from).")]
SigningKeyOpt = Annotated[list[Path] | None, typer.Option(
    "--signing-key-file",
    help="A 0600 file with a site's snapshot signing key (the recovery sheet has it).")]


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
