"""``flowsafe restore``, ``undo`` and ``restore-file``: the orchestration.

In place: resolve and check the snapshot (signature, manifest) -> every pre-flight
check (admin rights, packet limit, space, schema guard) -> plan -> confirm ->
pre-restore backup -> scratch database loaded and checked, sibling folder restored
(journaled: a kill here leaves production untouched) -> the swap (journaled: a kill
puts production back, or finishes a swap that completed). Elsewhere: the same
loading into a new or empty database and a new folder, with the site's own
application account written into config.php.
"""

from __future__ import annotations

import logging
import os
import secrets
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from flowsafe import runs
from flowsafe.backup import ProgressFn, backup_site
from flowsafe.catalog import (
    Checked,
    TrustOptions,
    read_manifest,
    resolve,
    site_repository,
    staging_path,
    trust_for,
)
from flowsafe.config import Config, select_site
from flowsafe.errors import ConfigError, FlowsafeError
from flowsafe.faults import checkpoint
from flowsafe.itflow.config_php import read_php, rewrite_settings
from flowsafe.itflow.site import schema_version_in_use
from flowsafe.lock import site_lock
from flowsafe.manifest import Manifest
from flowsafe.mariadb import accounts
from flowsafe.mariadb.connection import DbTarget, connect
from flowsafe.mariadb.statements import definer_of
from flowsafe.restic import Snapshot
from flowsafe.restore.database import build_database, preflight
from flowsafe.restore.files import carry_over, restore_path, restore_tree, sibling
from flowsafe.restore.plan import Plan, RestoreOptions, Versions, make_plan
from flowsafe.session import locked_site
from flowsafe.sites import Site
from flowsafe.swap import journal, objects
from flowsafe.swap.folders import DirSwap, identity
from flowsafe.swap.journal import Journal
from flowsafe.swap.tables import DbSwap, database_exists, drop_database, tables_of

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
    phases: dict[str, float] = field(default_factory=dict)  # seconds per step


def side_name(database: str, role: str) -> str:
    """A fresh database name beside ``database`` (<= 64 characters), e.g. itflow__new_3fa9c1."""
    return f"{database[:40]}__{role}_{secrets.token_hex(3)}"


def _live_versions(site: Site) -> Versions:
    with connect(site.database) as conn:
        schema = schema_version_in_use(conn)
    return Versions(site.install.app_version, schema, site.install.expected_schema_version)


def _check_space(folder: Path, needed: int, what: str) -> None:
    """Refuse early when the file system cannot hold ``needed`` more bytes."""
    stats = os.statvfs(folder)
    free = stats.f_bavail * stats.f_frsize
    if free < needed:
        raise FlowsafeError(f"{what} needs {needed // (1 << 20)} MiB on {folder}'s file system "
                            f"and {free // (1 << 20)} MiB are free: free space first; nothing "
                            "was changed")


@dataclass(frozen=True)
class Prepared:
    """A restore decided: the snapshot, its manifest, the plan, the admin account."""

    snap: Snapshot
    checked: Checked
    plan: Plan
    admin: DbTarget | None


def plan_for(config: Config, site: Site, options: RestoreOptions) -> Prepared:
    """Everything a restore checks before it may change anything (``--dry-run`` too)."""
    snap = resolve(site.restic, site.name, options.snapshot,
                   include_safety=options.include_safety)
    checked = read_manifest(site.restic, snap, site.name,
                            trust_for(config, site.name, options.trust))
    manifest = checked.manifest
    database = not options.files_only
    admin = site.admin() if database else None
    notes = preflight(admin, manifest).notes if admin is not None else []
    if not options.db_only:
        _check_space(site.install.path.parent, manifest.files.bytes, "restoring the files")
    live_objects = (objects.ObjectSet(names=objects.present(admin, site.database.database))
                    .described() if admin is not None else [])
    plan = make_plan(site.name, snap, manifest, checked.trust, _live_versions(site), options,
                     site.database.database, str(site.install.path),
                     journal.read(config.state_dir, site.name).rollback, live_objects, notes)
    return Prepared(snap, checked, plan, admin)


def _app_definer(site: Site, admin: DbTarget) -> str:
    """The DEFINER of restored views, triggers and routines: the site's own account."""
    return definer_of(site.install.config.dbusername,
                      accounts.host_of(admin, site.install.config.dbusername))


def _restore_locked(config: Config, site: Site, options: RestoreOptions, confirm: Confirm,
                    progress: ProgressFn) -> RestoreResult:
    ready = plan_for(config, site, options)
    plan, snap, manifest, admin = ready.plan, ready.snap, ready.checked.manifest, ready.admin
    if plan.refusal:
        raise ConfigError(f"refusing to restore: {plan.refusal} (--force overrides)")
    if options.dry_run or not confirm(plan):
        return RestoreResult(plan=plan, done=False)
    phases: dict[str, float] = {}
    clock = time.monotonic()
    safety = None
    if options.safety_backup:
        safety = backup_site(config, site, "pre-restore", progress).snapshot_id
        checkpoint("safety-backup")
        phases["safety backup"], clock = time.monotonic() - clock, time.monotonic()
    token = secrets.token_hex(3)
    live_db, live_path = site.database.database, site.install.path
    tree, excludes = manifest.files.root, site.config.exclude
    if manifest.files.uploads_only:  # swap uploads/ only: the live code stays
        live_path, tree = live_path / "uploads", f"{tree.rstrip('/')}/uploads"
        excludes = [e.strip("/").removeprefix("uploads/") for e in excludes
                    if e.strip("/").startswith("uploads/")]
    scratch_db = side_name(live_db, "new") if plan.database else None
    new_path = sibling(live_path, "new", token)
    now = datetime.now(UTC)
    entry = Journal(site=site.name, action="restore", phase="prepare", snapshot=snap.id,
                    snapshot_time=snap.time, restored_at=now, started=now,
                    scratch_db=scratch_db, scratch_dirs=[new_path] if plan.files else [])
    journal.begin(config.state_dir, entry)
    try:
        new_objects = objects.ObjectSet()
        if scratch_db is not None and admin is not None:
            result = build_database(site.restic, snap, staging_path(snap, site.name), manifest,
                                    admin, scratch_db, jobs=options.jobs, progress=progress)
            new_objects = objects.from_dump(result.objects, manifest.database.objects,
                                            _app_definer(site, admin))
            checkpoint("db-verify")
            phases["database"], clock = time.monotonic() - clock, time.monotonic()
            phases.update({f"database: {k}": v for k, v in result.phases.items()})
        if plan.files:
            progress("files", 0, None)
            restore_tree(site.restic, snap, tree, new_path)
            carry_over(live_path, new_path, excludes)
            checkpoint("files-restore")
            phases["files"], clock = time.monotonic() - clock, time.monotonic()
        journal.purge(config.state_dir, site.name, lambda: admin or site.database)
    except BaseException as exc:
        journal.recover(config.state_dir, site.name, lambda: admin or site.database,
                        crashed=False)
        if isinstance(exc, FlowsafeError):
            raise exc.also("nothing was swapped: the live site is as it was") from None
        raise
    old_db = side_name(live_db, "old")
    swapping = entry.model_copy(update={
        "db": DbSwap(live=live_db, source=scratch_db, sink=old_db,
                     old=tables_of(admin, live_db), new=tables_of(admin, scratch_db))
        if scratch_db is not None and admin is not None else None,
        "old_objects": objects.from_live(admin, live_db) if admin is not None
        else objects.ObjectSet(),
        "new_objects": new_objects,
        "files": DirSwap(live=live_path, source=new_path,
                         sink=sibling(live_path, "old", token), old=_identity(live_path),
                         new=_identity(new_path)) if plan.files else None,
    })
    journal.swap(config.state_dir, swapping, admin or site.database)
    phases["swap"] = time.monotonic() - clock
    return RestoreResult(
        plan=plan, done=True, safety_snapshot=safety,
        rollback_database=old_db if plan.database else None,
        rollback_folder=swapping.files.sink if swapping.files else None,
        phases={k: round(v, 2) for k, v in phases.items()},
    )


def _identity(path: Path) -> tuple[int, int]:
    found = identity(path)
    if found is None:
        raise FlowsafeError(f"{path} is missing: nothing was swapped")
    return found


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
    """What undo swapped back, purged or forgot."""

    site: str
    action: str  # "undo", "redo", "purge", "forget"
    restore_time: datetime | None
    snapshot: str | None
    database: str | None
    folder: Path | None


def run_undo(config: Config, site_name: str | None, *, purge_only: bool, forget: bool,
             confirm: Callable[[Journal], bool]) -> UndoResult | None:
    """Swap back what the last restore replaced (run again: redo), or delete it
    (``purge_only``), or drop a journal that no longer matches what is on disk
    (``forget``, touching nothing else: it works while the site folder is missing, as it
    is when a folder of an interrupted restore was removed by hand)."""
    if forget:
        name, _ = select_site(config, site_name)
        with site_lock(config.state_dir, name, "undo"):
            state = journal.forget(config.state_dir, name)
        shown = state.current or state.rollback
        return UndoResult(name, "forget", shown.restored_at if shown else None,
                          shown.snapshot if shown else None, None, None)
    with locked_site(config, site_name, "undo") as site:
        kept = journal.read(config.state_dir, site.name).rollback
        if kept is None:
            raise ConfigError(f"nothing to undo for site '{site.name}': no restore has kept "
                              "rollback state")
        if not confirm(kept):
            return None
        admin = site.admin() if kept.db is not None else site.database
        if purge_only:
            journal.purge(config.state_dir, site.name, lambda: admin)
            action = "purge"
        else:
            journal.swap(config.state_dir, kept.inverse(datetime.now(UTC)), admin)
            action = "undo" if kept.action == "restore" else "redo"
        return UndoResult(site.name, action, kept.restored_at, kept.snapshot,
                          kept.db.sink if kept.db else None,
                          kept.files.sink if kept.files else None)


@dataclass(frozen=True)
class ElsewhereOptions:
    """``flowsafe restore SNAPSHOT --to-path DIR --to-db NAME``: where, and as whom.

    ``server`` names the MariaDB server and the application account written into
    config.php (``server.user``). With its password given (``existing_account``) that
    account is used as it is; otherwise root creates it with a random password and
    rights on ``database`` only. Root over the local socket does the work when it
    answers; else the application account itself does (it must have its password).
    """

    snapshot: str
    to_path: Path
    database: str
    server: DbTarget
    existing_account: bool = False
    replace_existing: bool = False
    jobs: int = 2
    trust: TrustOptions = field(default_factory=TrustOptions)
    base_url: str | None = None  # the new $config_base_url (host[/path], no scheme)


@dataclass(frozen=True)
class ElsewhereResult:
    """Where the copy went."""

    snapshot_id: str
    path: Path
    database: str
    where: str
    app_user: str
    app_version: str | None
    schema_version: str | None
    trust: str


def check_target(config: Config, options: ElsewhereOptions, admin: DbTarget) -> bool:
    """Refuse a target that is not new (before anything is asked or changed); returns
    whether the database holds something that ``--replace-existing`` lets go."""
    path = options.to_path.absolute()
    for name, site in config.sites.items():
        if path == site.path or site.path in path.parents or path in site.path.parents:
            raise ConfigError(f"--to-path {path} overlaps the live site '{name}' ({site.path}): "
                              "choose a new folder")
    if path.exists() and any(path.iterdir()):
        raise ConfigError(f"--to-path {path} is not empty: choose a new or empty folder")
    holds = bool(tables_of(admin, options.database)
                 or objects.present(admin, options.database))
    if holds and not options.replace_existing:
        raise ConfigError(f"database '{options.database}' is not empty ({admin.where()}): "
                          "choose a new database name, or pass --replace-existing to drop "
                          "what it holds")
    return holds


def elsewhere_admin(server: DbTarget) -> DbTarget:
    """Who builds a restore elsewhere: root over the local socket when it answers, else the
    account given (it must be allowed to create the database, or be limited to it)."""
    root = accounts.root_over_socket(server)
    return root if root is not None else server


def run_restore_elsewhere(config: Config, site_name: str | None, options: ElsewhereOptions,
                          confirm: Callable[[ElsewhereOptions, Manifest], bool],
                          progress: ProgressFn) -> ElsewhereResult | None:
    """Restore a site into a new folder and database (a new server, or for inspection)."""
    site, restic = site_repository(config, site_name)
    admin = elsewhere_admin(options.server).with_database(options.database)
    snap = resolve(restic, site, options.snapshot)
    checked = read_manifest(restic, snap, site, trust_for(config, site, options.trust))
    manifest = checked.manifest
    if manifest.files.uploads_only:
        raise ConfigError(f"snapshot {snap.short_id} is an imported ITFlow archive (database and "
                          "uploads/ only, no PHP files): restore it in place into a site that "
                          "has ITFlow's code, or export it (`flowsafe archive export`)")
    holds = check_target(config, options, admin)
    if not confirm(options, manifest):
        return None
    if holds:
        drop_database(admin, options.database)
    create = not database_exists(admin, options.database)
    path = options.to_path.absolute()
    created_db = False
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.exists():
            path.rmdir()
        app_user = options.server.user
        password = options.server.password
        if not options.existing_account:
            if admin.user == app_user:
                raise ConfigError(f"root does not answer over the local socket here, so the "
                                  f"account '{app_user}' must already exist: give its password "
                                  "with --db-password-file")
            password = accounts.create_app_account(admin, options.database, app_user)
        result = build_database(restic, snap, staging_path(snap, site), manifest, admin,
                                options.database, jobs=options.jobs, progress=progress,
                                create=create)
        created_db = True
        objects.create(admin, options.database, objects.from_dump(
            result.objects, manifest.database.objects,
            definer_of(app_user, accounts.host_of(admin, app_user))))
        progress("files", 0, None)
        restore_tree(restic, snap, manifest.files.root, path)
        config_php = path / "config.php"
        settings = {"dbhost": options.server.host, "dbusername": app_user,
                    "dbpassword": password.reveal(), "database": options.database}
        if options.base_url is not None:
            settings["config_base_url"] = options.base_url
        config_php.write_text(rewrite_settings(read_php(config_php, "ITFlow config"), settings))
    except BaseException:
        shutil.rmtree(path, ignore_errors=True)
        if created_db or create:
            drop_database(admin, options.database)
        raise
    return ElsewhereResult(snap.id, path, options.database, options.server.where(),
                           app_user, manifest.itflow.app_version,
                           manifest.itflow.schema_version, checked.trust)


def run_restore_file(config: Config, site_name: str | None, snapshot: str, rel: str,
                     to_dir: Path, trust: TrustOptions) -> Path:
    """One file or folder of a snapshot into ``to_dir`` (never over production)."""
    site, restic = site_repository(config, site_name)
    snap = resolve(restic, site, snapshot)
    manifest = read_manifest(restic, snap, site, trust_for(config, site, trust)).manifest
    production = [s.path for s in config.sites.values()]
    return restore_path(restic, snap, manifest.files.root, rel, to_dir, production)
