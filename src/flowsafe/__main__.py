"""Entry point for ``python -m flowsafe``."""

from flowsafe.cli import main

main()
