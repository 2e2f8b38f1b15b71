"""``flowsafe restore``, ``undo`` and ``restore-file``: the orchestration.

In place: plan -> confirm -> pre-restore backup -> scratch database loaded and
checked -> sibling folder restored -> (only now) the swap, journaled so that a
kill at any step leaves production as it was, or fully swapped. Elsewhere: the
same loading into a new database and folder, then config.php's database
settings rewritten.
"""

from __future__ import annotations

import logging
import secrets
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from flowsafe import runs
from flowsafe.backup import ProgressFn, backup_site
from flowsafe.catalog import read_manifest, resolve, site_repository, staging_path
from flowsafe.config import Config
from flowsafe.errors import ConfigError
from flowsafe.faults import checkpoint
from flowsafe.itflow.config_php import rewrite_db_settings
from flowsafe.itflow.site import schema_version_in_use
from flowsafe.manifest import Manifest
from flowsafe.mariadb.connection import DbTarget, connect
from flowsafe.restic import Restic, Snapshot
from flowsafe.restore import journal
from flowsafe.restore.database import (
    create_database,
    load_dump,
    side_name,
    stored_objects,
    verify_against_manifest,
)
from flowsafe.restore.files import carry_over, restore_path, restore_tree, sibling
from flowsafe.restore.journal import Journal
from flowsafe.restore.plan import Plan, RestoreOptions, Versions, make_plan
from flowsafe.restore.swap import DbSwap, DirSwap, tables_of
from flowsafe.session import locked_site
from flowsafe.sites import Site

log = logging.getLogger(__name__)

Confirm = Callable[[Plan], bool]


@dataclass(frozen=True)
class RestoreResult:
    """What was restored and what is kept for undo."""

    plan: Plan
    done: bool
    safety_snapshot: str | None = None
    rollback_database: str | None = None
    rollback_folder: Path | None = None


def _live_versions(site: Site, with_db: bool) -> Versions:
    schema = None
    if with_db:
        with connect(site.database) as conn:
            schema = schema_version_in_use(conn)
    return Versions(site.install.app_version, schema, site.install.expected_schema_version)


def _fetch_dump(restic: Restic, snap: Snapshot, site: str, work: Path) -> Path:
    """Restore the snapshot's dump files below ``work``; returns the staging folder there."""
    staging = staging_path(snap, site)
    restic.restore(snap.id, work, includes=[f"{staging}/db"])
    return work / staging.lstrip("/")


def build_database(restic: Restic, snap: Snapshot, site: str, manifest: Manifest,
                   target: DbTarget, work: Path, jobs: int, progress: ProgressFn) -> None:
    """Create ``target.database``, load the snapshot into it and check it."""
    folder = _fetch_dump(restic, snap, site, work)
    create_database(target, target.database)
    total = manifest.database.total_bytes
    load_dump(target, folder, manifest, jobs=jobs,
              on_bytes=lambda done: progress("load", done, total))
    checkpoint("db-load")
    verify_against_manifest(target, manifest)
    checkpoint("db-verify")


def plan_for(site: Site, options: RestoreOptions, state_dir: Path) -> tuple[Snapshot, Manifest,
                                                                           Plan]:
    snap = resolve(site.restic, site.name, options.snapshot)
    manifest = read_manifest(site.restic, snap, site.name)
    live = _live_versions(site, with_db=True)
    plan = make_plan(site.name, snap, manifest, live, options, site.database.database,
                     str(site.install.path), journal.read(state_dir, site.name, "rollback"))
    if plan.database:
        objects = stored_objects(site.database, site.database.database)
        if objects:
            raise ConfigError(
                f"the live database has {', '.join(objects[:3])}: an atomic table swap cannot "
                "move those; restore with --to-path/--to-db and point config.php there")
    return snap, manifest, plan


def purge(state_dir: Path, site: str, target: DbTarget | None) -> Journal | None:
    """Delete the kept rollback state (database and folder)."""
    kept = journal.read(state_dir, site, "rollback")
    if kept is None:
        return None
    if kept.db is not None and target is not None:
        journal.drop_database(target, kept.db.sink)
    if kept.files is not None:
        shutil.rmtree(kept.files.sink, ignore_errors=True)
    journal.remove(state_dir, site, "rollback")
    return kept


def _swap(state_dir: Path, entry: Journal, target: DbTarget) -> None:
    """Apply the journaled swaps; on any failure put production back and re-raise."""
    journal.write(state_dir, "current", entry.at("swap"))
    try:
        if entry.db is not None:
            entry.db.apply(target)
            checkpoint("swap-db")
        if entry.files is not None:
            entry.files.apply()
        checkpoint("swap-done")
    except BaseException:
        journal.recover(state_dir, entry.site, lambda: target)
        raise
    journal.finish(state_dir, entry)
    if entry.db is not None and not tables_of(target, entry.db.source):
        journal.drop_database(target, entry.db.source)


def _restore_locked(config: Config, site: Site, options: RestoreOptions, confirm: Confirm,
                    progress: ProgressFn) -> RestoreResult:
    snap, manifest, plan = plan_for(site, options, config.state_dir)
    if plan.refusal:
        raise ConfigError(f"refusing to restore: {plan.refusal} (--force overrides)")
    approved = confirm(plan)
    if options.dry_run or not approved:
        return RestoreResult(plan=plan, done=False)
    safety = None
    if options.safety_backup:
        safety = backup_site(config, site, "pre-restore", progress).snapshot_id
        checkpoint("safety-backup")
    token = secrets.token_hex(3)
    live_path = site.install.path
    entry = Journal(
        site=site.name, action="restore", phase="prepare", snapshot=snap.id,
        started=datetime.now(UTC),
        db=DbSwap(live=site.database.database, source=side_name(site.database.database, "new"),
                  sink=side_name(site.database.database, "old")) if plan.database else None,
        files=DirSwap(live=live_path, source=sibling(live_path, "new", token),
                      sink=sibling(live_path, "old", token)) if plan.files else None,
        work_dir=journal.work_dir(config.state_dir, site.name) / token,
    )
    journal.write(config.state_dir, "current", entry)
    try:
        if entry.db is not None and entry.work_dir is not None:
            build_database(site.restic, snap, site.name, manifest,
                           site.database.with_database(entry.db.source), entry.work_dir,
                           options.jobs, progress)
        if entry.files is not None:
            progress("files", 0, None)
            restore_tree(site.restic, snap, manifest.files.root, entry.files.source)
            carry_over(live_path, entry.files.source, site.config.exclude)
            checkpoint("files-restore")
        purge(config.state_dir, site.name, site.database)
    except BaseException:
        journal.discard_scratch(entry, site.database)
        journal.remove(config.state_dir, site.name, "current")
        raise
    _swap(config.state_dir, entry, site.database)
    if entry.work_dir is not None:
        shutil.rmtree(entry.work_dir, ignore_errors=True)
    return RestoreResult(
        plan=plan, done=True, safety_snapshot=safety,
        rollback_database=entry.db.sink if entry.db else None,
        rollback_folder=entry.files.sink if entry.files else None,
    )


def run_restore(config: Config, site_name: str | None, options: RestoreOptions,
                confirm: Confirm, progress: ProgressFn) -> RestoreResult:
    """Restore a site in place (database, files or both), under its lock."""
    if options.db_only and options.files_only:
        raise ConfigError("--db-only and --files-only exclude each other: pick one, or neither "
                          "for a full restore")
    with locked_site(config, site_name, "restore") as site, \
            runs.recording(config.state_dir, site.name, "restore", options.snapshot) as entry:
        result = _restore_locked(config, site, options, confirm, progress)
        entry.snapshot = result.plan.snapshot_id
        entry.skip = not result.done
        return result


@dataclass(frozen=True)
class UndoResult:
    """What undo swapped back, or purged."""

    site: str
    restore_time: datetime
    snapshot: str
    database: str | None
    folder: Path | None
    purged: bool


def run_undo(config: Config, site_name: str | None, *, purge_only: bool,
             confirm: Callable[[Journal], bool]) -> UndoResult | None:
    """Swap back what the last restore replaced, or (``purge_only``) delete it."""
    with locked_site(config, site_name, "undo") as site:
        kept = journal.read(config.state_dir, site.name, "rollback")
        if kept is None:
            raise ConfigError(f"nothing to undo for site '{site.name}': no restore has kept "
                              "rollback state")
        if not confirm(kept):
            return None
        if purge_only:
            purge(config.state_dir, site.name, site.database)
        else:
            _swap(config.state_dir, kept.inverse(datetime.now(UTC)), site.database)
        return UndoResult(site.name, kept.started, kept.snapshot,
                          kept.db.sink if kept.db else None,
                          kept.files.sink if kept.files else None, purge_only)


@dataclass(frozen=True)
class ElsewhereOptions:
    """``flowsafe restore SNAPSHOT --to-path DIR --to-db NAME``."""

    snapshot: str
    to_path: Path
    target: DbTarget
    jobs: int = 2


@dataclass(frozen=True)
class ElsewhereResult:
    """Where the copy went."""

    snapshot_id: str
    path: Path
    database: str
    where: str
    app_version: str | None
    schema_version: str | None


def _check_free(config: Config, options: ElsewhereOptions) -> None:
    path = options.to_path.resolve()
    for name, site in config.sites.items():
        if path == site.path or site.path in path.parents or path in site.path.parents:
            raise ConfigError(f"--to-path {path} overlaps the live site '{name}' ({site.path}): "
                              "choose a new folder")
    if path.exists() and any(path.iterdir()):
        raise ConfigError(f"--to-path {path} is not empty: choose a new or empty folder")
    if tables_of(options.target, options.target.database):
        raise ConfigError(f"database '{options.target.database}' already has tables "
                          f"({options.target.where()}): choose a new database name")


def run_restore_elsewhere(config: Config, site_name: str | None, options: ElsewhereOptions,
                          confirm: Callable[[ElsewhereOptions, Manifest], bool],
                          progress: ProgressFn) -> ElsewhereResult | None:
    """Restore a site into a new folder and database (a new server, or for inspection)."""
    site, restic = site_repository(config, site_name)
    _check_free(config, options)
    snap = resolve(restic, site, options.snapshot)
    manifest = read_manifest(restic, snap, site)
    if not confirm(options, manifest):
        return None
    path = options.to_path.resolve()
    target = options.target
    work = path.with_name(f".{path.name}.flowsafe-work")
    created_db = False
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.exists():
            path.rmdir()
        build_database(restic, snap, site, manifest, target, work, options.jobs, progress)
        created_db = True
        progress("files", 0, None)
        restore_tree(restic, snap, manifest.files.root, path)
        config_php = path / "config.php"
        config_php.write_text(rewrite_db_settings(
            config_php.read_text(), host=target.host, user=target.user,
            password=target.password.reveal(), database=target.database))
    except BaseException:
        shutil.rmtree(path, ignore_errors=True)
        if created_db or tables_of(target, target.database):
            journal.drop_database(target, target.database)
        raise
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return ElsewhereResult(snap.id, path, target.database, target.where(),
                           manifest.itflow.app_version, manifest.itflow.schema_version)


def run_restore_file(config: Config, site_name: str | None, snapshot: str, rel: str,
                     to_dir: Path) -> Path:
    """One file or folder of a snapshot into ``to_dir`` (never over production)."""
    site, restic = site_repository(config, site_name)
    snap = resolve(restic, site, snapshot)
    manifest = read_manifest(restic, snap, site)
    production = [s.path for s in config.sites.values()]
    return restore_path(restic, snap, manifest.files.root, rel, to_dir, production)

