"""``flowsafe drill``: restore a snapshot into a private MariaDB and a temp folder, run
the checks, record the result in the repository. Production is never touched.

The private server's packet limit is the production server's, recorded in the
manifest (raised only as far as the snapshot's longest statement needs, as a
restore raises it), so a drill fails where a restore would. Tables are checked as
they finish loading; the files and a ``restic check`` of part of the repository's
data run alongside the load.
"""

from __future__ import annotations

import grp
import shutil
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from flowsafe import runs, scratch
from flowsafe.backup import ProgressFn
from flowsafe.catalog import (
    Checked,
    TrustOptions,
    read_manifest,
    resolve,
    site_repository,
    staging_path,
    trust_for,
)
from flowsafe.config import Config
from flowsafe.drill import checks, record
from flowsafe.drill.report import DrillReport, Skip
from flowsafe.errors import FlowsafeError
from flowsafe.keys.run import KeySource, load_key
from flowsafe.manifest import Manifest
from flowsafe.mariadb import accounts
from flowsafe.mariadb.connection import DbTarget, server_version
from flowsafe.mariadb.instance import PrivateServer, private_server, servers_folder
from flowsafe.mariadb.statements import definer_of
from flowsafe.mariadb.survey import version_number
from flowsafe.notify import announce
from flowsafe.notify.outcome import Outcome
from flowsafe.offsite.copy import named
from flowsafe.restic import Restic, Snapshot
from flowsafe.restore.database import build_database, needed_packet
from flowsafe.restore.files import restore_tree
from flowsafe.swap import objects

WORK_PREFIX = "drill-"
APP_USER = "itflow_drill"


@dataclass(frozen=True)
class DrillOptions:
    """What ``flowsafe drill`` was asked to do."""

    snapshot: str = "latest"
    keep: bool = False
    key_source: KeySource | None = None
    jobs: int = 2
    trust: TrustOptions = field(default_factory=TrustOptions)
    repository: str | None = None  # drill from this repository (an off-site copy)


def php_group() -> str | None:
    """The group the drill's PHP check runs as, if this machine has it."""
    for name in ("www-data", "nogroup"):
        try:
            grp.getgrnam(name)
            return name
        except KeyError:
            continue
    return None


class _Background:
    """A job run in a thread; ``result()`` returns its value or raises what it raised."""

    def __init__(self, job: Callable[[], str]) -> None:
        self.value = ""
        self.error: BaseException | None = None

        def run() -> None:
            try:
                self.value = job()
            except BaseException as exc:  # handed to the caller by result()
                self.error = exc

        self.thread = threading.Thread(target=run, daemon=True)
        self.thread.start()

    def result(self) -> str:
        self.thread.join()
        if self.error is not None:
            raise self.error
        return self.value


def _drill_server(report: DrillReport, config: Config, restic: Restic, snap: Snapshot,
                  manifest: Manifest, server: PrivateServer, work: Path,
                  options: DrillOptions, progress: ProgressFn) -> None:
    admin = server.target()
    database = manifest.database.name
    target = admin.with_database(database)
    tree = work / "site"
    comparable = (version_number(server_version(admin))
                  == version_number(manifest.database.server_version))
    values = checks.TableValues(manifest, comparable)
    files = _Background(lambda: _restore_files(restic, snap, manifest, tree))
    subset = config.drill.read_data_subset
    repository = _Background(lambda: _check_repository(restic, subset))
    app: list[DbTarget] = []

    def load() -> str:
        result = build_database(restic, snap, staging_path(snap, report.site), manifest, admin,
                                database, jobs=options.jobs, progress=progress,
                                on_table=values.on_table)
        password = accounts.create_app_account(admin, database, APP_USER)
        app.append(DbTarget(database=database, socket=server.socket, user=APP_USER,
                            password=password))
        objects.create(admin, database, objects.from_dump(
            result.objects, manifest.database.objects, definer_of(APP_USER)))
        return (f"{result.tables} tables, {result.rows} rows, every chunk's digest equal to "
                f"the manifest's ({result.seconds:.1f} s)")

    try:
        report.run("load database", load)
    finally:
        files.thread.join()
    report.run("restore files", files.result)
    db = ("load database",)
    report.run("tables present", lambda: checks.tables_present(target, manifest), needs=db)
    report.run("table values", lambda: values.result(target, work), needs=db)
    report.run("views, triggers, routines", lambda: checks.objects_present(target, manifest),
               needs=db)
    report.run("schema version", lambda: checks.schema_version(target, manifest), needs=db)
    both = ("load database", "restore files")
    report.run("uploads referenced", lambda: checks.uploads_referenced(target, tree), needs=both)

    def credentials() -> str:
        if options.key_source is None:
            raise Skip("no master key given (--key-file or --age-identity)")
        key = load_key(options.key_source, restic, report.site)
        return checks.credentials_decrypt(target, key.reveal())

    report.run("credentials decrypt", credentials, needs=db)
    def login_page() -> str:
        if manifest.files.uploads_only:
            raise Skip("an imported ITFlow archive holds no PHP files")
        return checks.login_page(app[0], server.socket, tree, config.drill.php_port)

    report.run("login page", login_page, needs=both)
    report.run("repository data", repository.result)
    longest = manifest.database.longest_statement
    if longest > manifest.database.max_allowed_packet:
        report.note(f"the longest statement ({longest} bytes) is over the production server's "
                    f"max_allowed_packet ({manifest.database.max_allowed_packet}): a restore "
                    "there raises it while it loads (as root), so set it higher in the server's "
                    "configuration to be safe")


def _restore_files(restic: Restic, snap: Snapshot, manifest: Manifest, tree: Path) -> str:
    restore_tree(restic, snap, manifest.files.root, tree)
    return f"{manifest.files.count} files"


def _check_repository(restic: Restic, subset: str) -> str:
    """``restic check`` beside the load, without a lock; a failure is confirmed under the
    lock (a prune elsewhere could have caused it) before it counts."""
    try:
        restic.check(read_data_subset=subset, lock=False)
    except FlowsafeError:
        restic.check(read_data_subset=subset)
    return f"restic check read {subset} of the repository's data"


def run_drill(config: Config, site_name: str | None, options: DrillOptions,
              progress: ProgressFn) -> DrillReport:
    """Drill one snapshot of one site; the result is recorded in the repository and in
    this machine's run history, then told (``notify.announce``)."""
    if site_name is None:
        site_name = site_repository(config, None)[0]
    started = time.monotonic()
    try:
        with runs.recording(config.state_dir, site_name, "drill", options.snapshot) as entry:
            report = _drill(config, site_name, options, progress)
            entry.snapshot = report.snapshot_id
            entry.error = None if report.ok else f"checks failed: {', '.join(report.failed())}"
    except Exception as exc:
        announce.after_run(config, Outcome.failed(site_name, "drill", exc,
                                                  time.monotonic() - started))
        raise
    failed = ", ".join(report.failed())
    announce.after_run(config, Outcome(
        report.site, "drill", report.ok, f"checks failed: {failed}" if failed else None,
        snapshot_id=report.snapshot_id, duration=report.seconds,
        detail=f"{len(report.checks)} checks" + (
            f" in repository '{options.repository}'" if options.repository else "")))
    return report


def _drill(config: Config, site_name: str, options: DrillOptions,
           progress: ProgressFn) -> DrillReport:
    site, restic = site_repository(config, site_name)
    if options.repository is not None:
        restic = named(config, options.repository)
    snap = resolve(restic, site, options.snapshot)
    report = DrillReport(site=site, snapshot_id=snap.id, snapshot_time=snap.time,
                         started=datetime.now(UTC))
    started = time.monotonic()
    checked: list[Checked] = []

    def read() -> str:
        checked.append(read_manifest(restic, snap, site, trust_for(config, site, options.trust)))
        m = checked[0].manifest
        return (f"ITFlow {m.itflow.app_version}, schema {m.itflow.schema_version}; "
                f"{checked[0].trust}")

    if report.run("read manifest", read):
        manifest = checked[0].manifest
        temp = config.state_dir / "tmp"
        scratch.clean_stale(temp, WORK_PREFIX)
        work = scratch.make(temp, WORK_PREFIX)
        packet = max(manifest.database.max_allowed_packet, needed_packet(manifest))
        try:
            with private_server(servers_folder(config.state_dir), keep=options.keep, packet=packet,
                                client_group=php_group()) as server:
                _drill_server(report, config, restic, snap, manifest, server, work, options,
                              progress)
                if options.keep:
                    scratch.keep(work, "drill")
                    report.kept = (f"mariadb --socket={server.socket} (as root); files in "
                                   f"{work}; stop with: kill {server.pid}; "
                                   f"rm -rf {server.folder} {work}")
        finally:
            if not options.keep:
                shutil.rmtree(work, ignore_errors=True)
    report.seconds = time.monotonic() - started
    record.save(restic, report)
    return report
