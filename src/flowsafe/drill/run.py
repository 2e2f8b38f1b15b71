"""``flowsafe drill``: restore a snapshot into a private MariaDB and a temp folder, run
the checks, record the result in the repository. Production is never touched."""

from __future__ import annotations

import shutil
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from flowsafe import scratch
from flowsafe.backup import ProgressFn
from flowsafe.catalog import read_manifest, resolve, site_repository, staging_path
from flowsafe.config import Config
from flowsafe.drill import checks, record
from flowsafe.drill.report import DrillReport, Skip
from flowsafe.errors import FlowsafeError
from flowsafe.keys.run import KeySource, load_key
from flowsafe.manifest import Manifest
from flowsafe.mariadb.instance import PrivateServer, private_server
from flowsafe.notify import hooks
from flowsafe.notify.outcome import Outcome
from flowsafe.offsite.copy import named
from flowsafe.restic import Restic, Snapshot
from flowsafe.restore.database import create_database, load_dump
from flowsafe.restore.files import restore_tree

WORK_PREFIX = "drill-"


@dataclass(frozen=True)
class DrillOptions:
    """What ``flowsafe drill`` was asked to do."""

    snapshot: str = "latest"
    keep: bool = False
    key_source: KeySource | None = None
    jobs: int = 2
    repository: str | None = None  # drill from this repository (an off-site copy)


def _restore_files(restic: Restic, snap: Snapshot, manifest: Manifest, dest: Path,
                   outcome: list[BaseException | None]) -> None:
    try:
        restore_tree(restic, snap, manifest.files.root, dest)
        outcome.append(None)
    except BaseException as exc:  # reported by the check, in the calling thread
        outcome.append(exc)


def _checks(report: DrillReport, config: Config, restic: Restic, snap: Snapshot,
            server: PrivateServer, work: Path, options: DrillOptions,
            progress: ProgressFn) -> None:
    manifest_box: list[Manifest] = []

    def manifest() -> Manifest:
        return manifest_box[0]

    def read() -> str:
        manifest_box.append(read_manifest(restic, snap, report.site))
        m = manifest()
        return f"ITFlow {m.itflow.app_version}, schema {m.itflow.schema_version}"

    if not report.run("read manifest", read):
        return
    target = server.target(manifest().database.name)
    tree = work / "site"
    files_outcome: list[BaseException | None] = []
    files = threading.Thread(target=_restore_files,
                             args=(restic, snap, manifest(), tree, files_outcome))
    files.start()

    def load() -> str:
        restic.restore(snap.id, work / "dump", includes=[f"{staging_path(snap, report.site)}/db"])
        create_database(target, target.database)
        m = manifest()
        load_dump(target, work / "dump" / staging_path(snap, report.site).lstrip("/"), m,
                  jobs=options.jobs,
                  on_bytes=lambda done: progress("load", done, m.database.total_bytes))
        shutil.rmtree(work / "dump", ignore_errors=True)
        return f"{len(m.database.tables)} tables, dump files match the manifest"

    def restored_files() -> str:
        files.join()
        if files_outcome and files_outcome[0] is not None:
            raise files_outcome[0]
        return f"{manifest().files.count} files"

    try:
        report.run("load database", load)
    finally:
        files.join()
    report.run("restore files", restored_files)
    db = ("load database",)
    report.run("tables present", lambda: checks.tables_present(target, manifest()), needs=db)
    report.run("row counts", lambda: checks.row_counts(target, manifest()), needs=db)
    report.run("table digests", lambda: checks.table_digests(target, manifest(), work),
               needs=db)
    report.run("schema version", lambda: checks.schema_version(target, manifest()), needs=db)
    both = ("load database", "restore files")
    report.run("uploads referenced", lambda: checks.uploads_referenced(target, tree), needs=both)
    def credentials() -> str:
        if options.key_source is None:
            raise Skip("no master key given (--key-file or --age-identity)")
        key = load_key(options.key_source, restic, report.site)
        return checks.credentials_decrypt(target, key.reveal())

    report.run("credentials decrypt", credentials, needs=db)
    report.run("login page", lambda: checks.login_page(target, server.socket, tree,
                                                       config.drill.php_port), needs=both)

    def repository_data() -> str:
        subset = config.drill.read_data_subset
        restic.check(read_data_subset=subset)
        return f"restic check read {subset} of the repository's data"

    report.run("repository data", repository_data)


def run_drill(config: Config, site_name: str | None, options: DrillOptions,
              progress: ProgressFn) -> DrillReport:
    """Drill one snapshot of one site and record the result; then tell (notify.hooks)."""
    name = site_name or (next(iter(config.sites)) if len(config.sites) == 1 else None)
    started = time.monotonic()
    try:
        report = _drill(config, site_name, options, progress)
    except Exception as exc:
        if name is not None:
            hooks.after_run(config, Outcome.failed(name, "drill", exc,
                                                   time.monotonic() - started))
        raise
    failed = ", ".join(report.failed())
    hooks.after_run(config, Outcome(
        report.site, "drill", report.ok, f"checks failed: {failed}" if failed else None,
        snapshot_id=report.snapshot_id, duration=report.seconds,
        detail=f"{len(report.checks)} checks" + (
            f" in repository '{options.repository}'" if options.repository else "")))
    return report


def _drill(config: Config, site_name: str | None, options: DrillOptions,
           progress: ProgressFn) -> DrillReport:
    site, restic = site_repository(config, site_name)
    if options.repository is not None:
        restic = named(config, options.repository)
    snap = resolve(restic, site, options.snapshot)
    report = DrillReport(site=site, snapshot_id=snap.id, snapshot_time=snap.time,
                         started=datetime.now(UTC))
    started = time.monotonic()
    temp = config.state_dir / "tmp"
    scratch.clean_stale(temp, WORK_PREFIX)
    work = scratch.make(temp, WORK_PREFIX)
    try:
        with private_server(temp, port=config.drill.mariadb_port,
                            keep=options.keep) as server:
            _checks(report, config, restic, snap, server, work, options, progress)
            if options.keep:
                scratch.keep(work, "drill")
                report.kept = (f"mariadb --socket={server.socket} -uroot "
                               f"(or -h127.0.0.1 -P{server.port} -uroot); "
                               f"files in {work}; stop with: kill {server.pid}; "
                               f"rm -rf {server.folder} {work}")
    finally:
        if not options.keep:
            shutil.rmtree(work, ignore_errors=True)
    report.seconds = time.monotonic() - started
    record.save(restic, report)
    return report


def run_drill_all(config: Config, options: DrillOptions,
                  progress: ProgressFn) -> list[DrillReport]:
    """Drill the newest snapshot of every configured site."""
    if not config.sites:
        raise FlowsafeError("no site configured: nothing to drill")
    return [run_drill(config, name, options, progress) for name in config.sites]

