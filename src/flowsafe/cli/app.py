"""The Typer app, its global options and the console entry point (errors -> exit codes)."""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Annotated

import typer

from flowsafe import __version__, render
from flowsafe.cli.common import STATE
from flowsafe.errors import EXIT_FAILED, FlowsafeError

app = typer.Typer(
    help="Complete, consistent, tested and restorable backups of ITFlow, stored with restic.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


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


def main() -> None:
    """Console entry point: one line per error, documented exit codes.

    Typer itself exits 2 on usage errors and honours ``typer.Exit``.
    """
    try:
        app()
    except FlowsafeError as exc:
        render.err.print(f"[red]error:[/] {exc}", highlight=False, soft_wrap=True)
        sys.exit(exc.exit_code)
    except OSError as exc:
        render.err.print(f"[red]error:[/] {exc}", highlight=False, soft_wrap=True)
        sys.exit(EXIT_FAILED)
