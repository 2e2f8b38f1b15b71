"""The Typer app, its global options and the console entry point (errors -> exit codes).

The global options ``--config`` and ``--verbose`` are accepted before the command and
after it (``flowsafe backup --config F``): ``main`` moves them to the front of the
command line. Help uses click's plain layout, which keeps option names whole at 80
columns.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Any

import typer

from flowsafe import __version__, render
from flowsafe.cli.common import STATE
from flowsafe.errors import EXIT_FAILED, FlowsafeError

app = typer.Typer(
    help="Complete, consistent, tested and restorable backups of ITFlow, stored with restic.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    rich_markup_mode=None,
)

CONFIG_HELP = "Config file (default $FLOWSAFE_CONFIG or /etc/flowsafe/flowsafe.toml)."
VERBOSE_HELP = "Debug logging."
SHOWN_LOGGERS = ("flowsafe.hooks",)  # child output that is always shown (INFO)


def _version(value: bool) -> None:
    if value:
        print(f"flowsafe {__version__}")
        raise typer.Exit()


def _logging(verbose: bool) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
        force=True,
    )
    for name in SHOWN_LOGGERS:
        logging.getLogger(name).setLevel(logging.DEBUG if verbose else logging.INFO)


@app.callback()
def main_options(
    config: Annotated[Path | None, typer.Option("--config", help=CONFIG_HELP)] = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help=VERBOSE_HELP)] = False,
    version: Annotated[bool, typer.Option(
        "--version", callback=_version, is_eager=True, help="Show the version."
    )] = False,
) -> None:
    """Global options."""
    STATE.config_file = config
    _logging(verbose)


def hoist_global_options(argv: Sequence[str]) -> list[str]:
    """``argv`` with ``--config F``/``--config=F``/``--verbose``/``-v`` moved before the
    command, wherever they were typed (nothing after ``--`` is touched)."""
    front: list[str] = []
    rest: list[str] = []
    args = iter(argv)
    for arg in args:
        if arg == "--":
            rest += [arg, *args]
        elif arg in ("--verbose", "-v") or arg.startswith("--config="):
            front.append(arg)
        elif arg == "--config":
            front += [arg, next(args, "")]
        else:
            rest.append(arg)
    return front + rest


def _error(exc: BaseException) -> None:
    render.err.print(f"[red]error:[/] {render.esc(exc)}")


def main(argv: Sequence[str] | None = None) -> Any:
    """Console entry point: one line per error, documented exit codes.

    Typer itself exits 2 on usage errors and honours ``typer.Exit``.
    """
    try:
        return app(args=hoist_global_options(sys.argv[1:] if argv is None else argv),
                   prog_name="flowsafe")
    except FlowsafeError as exc:
        _error(exc)
        sys.exit(exc.exit_code)
    except OSError as exc:
        _error(exc)
        sys.exit(EXIT_FAILED)
