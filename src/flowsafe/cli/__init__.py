"""The command line: parse options, call one ``run_*`` function, render. No logic here.

``app.py`` holds the Typer app, the global options and the entry point; each other
module registers the commands of one capability, in the order ``--help`` lists them.
Exit codes: 0 ok, 1 failed, 2 usage or configuration error, 3 verification found a
problem (see errors.py).
"""

from flowsafe.cli.app import app, main

# isort: split
from flowsafe.cli import site  # noqa: F401  (registers its commands)

# isort: split
from flowsafe.cli import restore  # noqa: F401

# isort: split
from flowsafe.cli import recover  # noqa: F401

# isort: split
from flowsafe.cli import drill  # noqa: F401

# isort: split
from flowsafe.cli import keys  # noqa: F401

# isort: split
from flowsafe.cli import update  # noqa: F401

# isort: split
from flowsafe.cli import schedule  # noqa: F401

# isort: split
from flowsafe.cli import offsite  # noqa: F401

# isort: split
from flowsafe.cli import report  # noqa: F401

# isort: split
from flowsafe.cli import archive  # noqa: F401

__all__ = ["app", "main"]
