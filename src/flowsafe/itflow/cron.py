"""ITFlow's crontab lines for a tree, as its own install files give them.

From 26.08 (``includes/cron_jobs.php`` present) one dispatcher, ``cron/cron.php``, runs
every minute and decides itself which jobs are due. Earlier releases ran each script
on its own schedule, from ``cron/`` or (older) ``scripts/`` with a ``cron_`` prefix:
``cron.php`` nightly at 02:00, the mail queue and the ticket mail parser every minute,
the domain and certificate refreshers at 03:00 and 04:00. Every line runs as the web
server's user, never root.
"""

from __future__ import annotations

from pathlib import Path

DISPATCHER_REGISTRY = "includes/cron_jobs.php"
DISPATCHER = "cron/cron.php"
LEGACY = (
    ("0 2 * * *", "cron.php"),
    ("* * * * *", "mail_queue.php"),
    ("* * * * *", "ticket_email_parser.php"),
    ("0 3 * * *", "domain_refresher.php"),
    ("0 4 * * *", "certificate_refresher.php"),
)


def cron_lines(tree: Path, user: str) -> list[str]:
    """``/etc/cron.d`` lines (with the user field) for the ITFlow at ``tree``; empty when
    the tree has no cron script."""
    if (tree / DISPATCHER).is_file() and (tree / DISPATCHER_REGISTRY).is_file():
        return [f"* * * * * {user} php {tree / DISPATCHER} 2>&1 | logger -t itflow-cron"]
    lines = []
    for schedule, script in LEGACY:
        names = (f"cron/{script}", f"scripts/{script}",
                 "scripts/cron.php" if script == "cron.php" else f"scripts/cron_{script}")
        found = next((name for name in names if (tree / name).is_file()), None)
        if found is not None:
            lines.append(f"{schedule} {user} php {tree / found} 2>&1 | logger -t itflow-cron")
    return lines
