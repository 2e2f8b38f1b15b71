"""``flowsafe demo``: the whole story a newcomer needs, on a sample site in a temp folder.

A private MariaDB and a sample ITFlow site; init; a backup; one of ITFlow's own
backup archives (written by PHP as ITFlow's cron writes it) imported; a night of work and
a second backup; a drill that proves the snapshot restores; an accidental
deletion (a client's rows and uploads) put back with ``restore``, and ``undo``
shown; a safe ``update`` of the site; the schedule ``schedule install`` would
write; and a backup report written beside you. Everything but the report is
removed at the end. Every step is the same function its command calls.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from flowsafe import render
from flowsafe.archive.importer import ImportOptions, run_import
from flowsafe.backup import ProgressFn, run_backup
from flowsafe.config import DatabaseSettings, load_config
from flowsafe.drill.run import DrillOptions, run_drill
from flowsafe.init import InitOptions, run_init
from flowsafe.keys.run import KeySource
from flowsafe.mariadb.connection import DbTarget, connect
from flowsafe.mariadb.instance import private_server
from flowsafe.report.run import run_report
from flowsafe.restore.plan import Plan, RestoreOptions
from flowsafe.restore.run import run_restore, run_undo
from flowsafe.sample import SampleSite, build_site, nightly_change
from flowsafe.sample.itflow_archive import write_itflow_backup
from flowsafe.schedule.demo import demo_schedule
from flowsafe.secret import write_private
from flowsafe.snapshots import list_snapshots
from flowsafe.update.demo import demo_update

REPORT_NAME = "flowsafe-demo-report.html"
NEXT_STEPS = """\
What to try next on your own ITFlow VM (as root; README, "Quick start"):
  flowsafe init --site /var/www/itflow        # reads config.php, creates the repository
  flowsafe backup --reason manual              # one consistent, signed snapshot
  flowsafe drill --key-file /root/master.key   # proves it restores, production untouched
  flowsafe schedule install                    # nightly backups, weekly drills
  flowsafe key unwrap --user you@example.com --age-recipient age1...  # escrow the key
Every snapshot is plain restic: `restic -r /var/backups/flowsafe snapshots` works without
flowsafe.
"""


def _client(sample: SampleSite, target: DbTarget) -> tuple[int, str, int]:
    """A client with uploads: (id, name, rows in files)."""
    with connect(target) as conn, conn.cursor() as cur:
        cur.execute("SELECT c.client_id, c.client_name, COUNT(*) FROM clients c JOIN files f "
                    "ON f.file_client_id = c.client_id GROUP BY c.client_id ORDER BY 3 DESC "
                    "LIMIT 1")
        row = cur.fetchone()
    assert row is not None
    return int(row[0]), str(row[1]), int(row[2])


def _rows_of(target: DbTarget, client: int) -> int:
    with connect(target) as conn, conn.cursor() as cur:
        cur.execute("SELECT COUNT(*) FROM files WHERE file_client_id = %s", (client,))
        row = cur.fetchone()
    return int(row[0]) if row else 0


def _approve(plan: Plan) -> bool:
    """The demo's --yes: show the plan, go ahead."""
    render.show_plan(plan)
    return True


def run_demo(progress: ProgressFn) -> Path:
    """Run the tour, narrating on stdout; returns the report it wrote (in the current
    folder)."""
    say = render.out.print
    report = Path.cwd() / REPORT_NAME
    with tempfile.TemporaryDirectory(prefix="flowsafe-demo-") as tmp:
        root = Path(tmp)
        root.chmod(0o711)  # the private MariaDB's user and PHP's pass through to theirs
        say(f"[bold]flowsafe demo[/] in {render.esc(root)} (removed at the end)")
        with private_server(root / "servers", client_group="www-data") as server:
            say(f"1. Started a private MariaDB (pid {server.pid}): the stand-in for your "
                "server.")
            sample = build_site(root / "www" / "itflow", server.target(), seed=1, scale=1.0)
            target = server.target(sample.database)
            say(f"2. Built a sample ITFlow {sample.app_version} site at "
                f"{render.esc(sample.path)} (schema {sample.schema_version}).")
            config_file = root / "etc" / "flowsafe.toml"
            result = run_init(config_file, InitOptions(
                site_path=sample.path, name="demo", repo_url=str(root / "repository"),
                state_dir=root / "state", database=DatabaseSettings(socket=server.socket),
            ))
            say(f"3. flowsafe init: config {render.esc(result.config_path)}, restic "
                f"repository {render.esc(result.repository_url)}.")
            config = load_config(config_file)
            say("4. flowsafe backup --reason manual")
            render.show_backup(run_backup(config, "demo", "manual", progress))
            made = write_itflow_backup(sample.path, server.socket, "full",
                                       sample.path / "uploads" / "backups")
            say(f"   ITFlow's own cron backup wrote {render.esc(made.name)}; flowsafe archive "
                "import --all takes it in as a signed snapshot (database and uploads/):")
            render.show_imports(run_import(config, "demo", ImportOptions(all=True), progress),
                                indent="   ")
            nightly_change(sample, server.target(), day=1)
            say("5. A night of work (tickets, logs, edits, 10 uploads), then flowsafe backup "
                "--reason nightly: restic stores only what changed.")
            render.show_backup(run_backup(config, "demo", "nightly", progress))
            render.show_snapshots(list_snapshots(config, "demo"))

            key = root / "master.key"
            write_private(key, sample.master_key + "\n")
            say("6. flowsafe drill --key-file master.key: the snapshot restores into a "
                "throwaway MariaDB, production untouched.")
            render.show_drill(run_drill(config, "demo", DrillOptions(
                key_source=KeySource(key_file=key)), progress))

            client, name, uploads = _client(sample, target)
            with connect(target) as conn, conn.cursor() as cur:
                cur.execute("DELETE FROM clients WHERE client_id = %s", (client,))
            shutil.rmtree(sample.path / "uploads" / "clients" / str(client))
            say(f"7. Oops: client '{render.esc(name)}' was deleted, with its {uploads} files "
                f"(rows and uploads): {_rows_of(target, client)} left. flowsafe restore "
                "latest --yes:")
            restored = run_restore(config, "demo", RestoreOptions("latest"), _approve, progress)
            render.show_restore(restored)
            say(f"   client '{render.esc(name)}' is back: {_rows_of(target, client)} files, "
                f"uploads folder there: {(sample.path / 'uploads/clients' / str(client)).is_dir()}")
            undone = run_undo(config, "demo", purge_only=False, forget=False,
                              confirm=lambda kept: True)
            assert undone is not None
            render.show_undo(undone)
            say(f"   undo put the deleted state back ({_rows_of(target, client)} files); "
                "undo again redoes the restore:")
            redone = run_undo(config, "demo", purge_only=False, forget=False,
                              confirm=lambda kept: True)
            assert redone is not None
            render.show_undo(redone)

            say("8. flowsafe update: a pre-update backup, ITFlow's updater, checks, a "
                "post-update backup.")
            demo_update(config_file, "demo", sample, server, root, progress)
            say("9. flowsafe schedule install, then schedule show:")
            demo_schedule(config_file, root / "system")
            written = run_report(load_config(config_file), "demo", None, report)
            say(f"10. flowsafe report: {render.esc(written.path)} (open it in a browser; it "
                "is kept).")
        say(NEXT_STEPS, markup=False)
    return report
