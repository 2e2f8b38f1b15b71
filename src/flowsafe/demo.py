"""``flowsafe demo``: the built-in tour on a sample site, in a temp folder.

It starts a private MariaDB, builds a sample ITFlow site, runs init and a
backup, changes some rows and files as a night of work would, backs up again,
lists the snapshots and says what to try next. Everything it made is removed.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from flowsafe import render
from flowsafe.backup import ProgressFn, run_backup
from flowsafe.config import DatabaseSettings, load_config
from flowsafe.init import InitOptions, run_init
from flowsafe.mariadb.instance import private_server
from flowsafe.sample import build_site, nightly_change
from flowsafe.snapshots import list_snapshots
from flowsafe.status import run_status

NEXT_STEPS = """\
[bold]What to try next[/] on your own ITFlow VM (as root):
  flowsafe init --site /var/www/itflow        # reads config.php, creates the repository
  flowsafe backup --reason manual              # one consistent snapshot
  flowsafe snapshots                           # what you have
  flowsafe status                              # exits 1 when the last backup is too old
  flowsafe prune --dry-run                     # what retention would remove
Every snapshot is plain restic: `restic -r /var/backups/flowsafe snapshots` works without flowsafe.
"""


def run_demo(progress: ProgressFn) -> None:
    """Run the tour, narrating on stdout."""
    say = render.out.print
    with tempfile.TemporaryDirectory(prefix="flowsafe-demo-") as tmp:
        root = Path(tmp)
        root.chmod(0o711)  # the private MariaDB's own user passes through to its folder
        say(f"[bold]flowsafe demo[/] in {root} (removed at the end)")
        with private_server(root / "servers") as server:
            say(f"1. Started a private MariaDB (pid {server.pid}, socket {server.socket}).")
            sample = build_site(root / "www" / "itflow", server.target(), seed=1, scale=1.0)
            say(f"2. Built a sample ITFlow {sample.app_version} site at {sample.path} "
                f"(schema {sample.schema_version}, database '{sample.database}').")
            config_file = root / "etc" / "flowsafe.toml"
            result = run_init(config_file, InitOptions(
                site_path=sample.path, name="demo", repo_url=str(root / "repository"),
                state_dir=root / "state", database=DatabaseSettings(socket=server.socket),
            ))
            say(f"3. flowsafe init: config {result.config_path}, new restic repository "
                f"{result.repository_url}, password in {result.password_file}.")
            config = load_config(config_file)
            say("4. flowsafe backup --reason manual")
            render.show_backup(run_backup(config, "demo", "manual", progress))
            nightly_change(sample, server.target(), day=1)
            say("5. A night of work: new tickets and logs, edited rows, 10 new uploads.")
            say("6. flowsafe backup --reason nightly (restic stores only what changed)")
            render.show_backup(run_backup(config, "demo", "nightly", progress))
            say("7. flowsafe snapshots")
            render.show_snapshots(list_snapshots(config, "demo"))
            say("8. flowsafe status")
            for row in run_status(config, "demo"):
                render.show_status(row)
        say(NEXT_STEPS)
