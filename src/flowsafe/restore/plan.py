"""What a restore will do, decided before anything is touched: parts, versions, guard.

The schema guard compares the database schema that will be live against the
schema the code that will be live expects. A database newer than its code
cannot work: refused unless ``--force``. An older one is allowed: ITFlow
migrates it forward.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from flowsafe.catalog import TrustOptions, is_safety
from flowsafe.itflow.versions import compare_versions
from flowsafe.manifest import Manifest
from flowsafe.restic import Snapshot
from flowsafe.swap.journal import Journal
from flowsafe.swap.objects import KINDS


@dataclass(frozen=True)
class RestoreOptions:
    """What ``flowsafe restore`` was asked to do in place."""

    snapshot: str
    db_only: bool = False
    files_only: bool = False
    dry_run: bool = False
    force: bool = False
    safety_backup: bool = True
    jobs: int = 2
    include_safety: bool = False
    trust: TrustOptions = field(default_factory=TrustOptions)


@dataclass(frozen=True)
class Versions:
    """App and schema versions on one side of the restore."""

    app: str | None
    schema: str | None
    expected_schema: str | None


@dataclass(frozen=True)
class Plan:
    """The plan the admin confirms."""

    site: str
    snapshot_id: str
    snapshot_time: datetime
    reason: str | None
    trust: str
    database: bool
    files: bool
    brings: list[str]  # what comes back: tables, views, triggers, ...
    live: Versions
    incoming: Versions
    safety_backup: bool
    replaces: list[str]
    keeps: list[str]
    warnings: list[str] = field(default_factory=list)
    refusal: str | None = None
    forced: bool = False
    previous_rollback: datetime | None = None


def _guard(db_schema: str | None, code_expects: str | None, db_side: str,
           code_side: str) -> tuple[str | None, str | None]:
    """(refusal, warning) for a database schema meeting the code that will run it."""
    if not db_schema or not code_expects:
        return None, (f"cannot compare schema versions ({db_side}: {db_schema or 'unknown'}, "
                      f"{code_side} expects {code_expects or 'unknown'})")
    order = compare_versions(db_schema, code_expects)
    if order > 0:
        return (f"{db_side} has schema {db_schema}, newer than {code_side} expects "
                f"({code_expects}): ITFlow cannot run it"), None
    if order < 0:
        return None, (f"{db_side} has schema {db_schema}, older than {code_side} expects "
                      f"({code_expects}): ITFlow will migrate it forward on first use "
                      "(migrations only go forward)")
    return None, None


def brought_back(manifest: Manifest) -> list[str]:
    """What a database restore of this snapshot brings back, every kind of object named."""
    tables = [f for f in manifest.database.tables if f.kind == "table"]
    found = [f"{len(tables)} tables ({sum(f.rows for f in tables)} rows)"]
    for kind in (*KINDS, "sequence"):
        if names := manifest.database.objects.get(kind):
            shown = ", ".join(names[:5]) + (", ..." if len(names) > 5 else "")
            found.append(f"{len(names)} {kind}{'s' if len(names) > 1 else ''} ({shown})")
    return found


def make_plan(site: str, snap: Snapshot, manifest: Manifest, trust: str, live: Versions,
              options: RestoreOptions, database_name: str, site_path: str,
              previous: Journal | None, live_objects: list[str],
              notes: list[str]) -> Plan:
    """Decide parts, guard versions and describe the replacements."""
    database = not options.files_only
    files = not options.db_only
    incoming = Versions(manifest.itflow.app_version, manifest.itflow.schema_version,
                        manifest.itflow.expected_schema_version)
    warnings: list[str] = []
    uploads_only = manifest.files.uploads_only
    if uploads_only:  # an imported ITFlow archive: the live code stays and runs its database
        site_path = f"{site_path.rstrip('/')}/uploads"
        warnings.append("the snapshot is an imported ITFlow archive (database and uploads/ "
                        "only): the live PHP files stay as they are")
    if database and files and not uploads_only:
        refusal, warning = _guard(incoming.schema, incoming.expected_schema,
                                  "the snapshot's database", "the snapshot's code")
    elif database:
        refusal, warning = _guard(incoming.schema, live.expected_schema,
                                  "the snapshot's database", "the live code")
        if refusal and not uploads_only:
            refusal += "; restore code and database together (a full restore)"
        if incoming.app != live.app and not uploads_only:
            warnings.append(f"database only: the snapshot was taken with ITFlow "
                            f"{incoming.app or 'unknown'}, the live code is "
                            f"{live.app or 'unknown'}")
    else:
        refusal, warning = _guard(live.schema, incoming.expected_schema,
                                  "the live database", "the snapshot's code")
        if refusal:
            refusal += "; restore code and database together (a full restore)"
    if warning:
        warnings.append(warning)
    if is_safety(snap):
        warnings.append(f"snapshot {snap.short_id} is a {snap.tag_value('reason')} safety "
                        "snapshot (taken just before an earlier restore, rewrap or update): "
                        "is it really the state you want back?")
    warnings += notes
    replaces, keeps = [], []
    if database:
        also = f" and its {', '.join(live_objects)}" if live_objects else ""
        replaces.append(f"every table of database '{database_name}'{also}")
        keeps.append("the replaced tables, in a rollback database (and the definitions of "
                     "what else it held)")
    if files:
        replaces.append(f"the folder {site_path}")
        keeps.append("the replaced folder, beside it")
    if not options.safety_backup:
        warnings.append("no pre-restore backup will be taken (--no-safety-backup): the "
                        "rollback state is then the only copy of what is replaced")
    if previous is not None:
        warnings.append(f"the rollback state of the restore of "
                        f"{previous.restored_at:%Y-%m-%d %H:%M} will be deleted")
    if refusal and options.force:
        warnings.append(f"FORCED: {refusal}; the site will probably not work until the code "
                        "and database match")
    return Plan(
        site=site, snapshot_id=snap.id, snapshot_time=snap.time,
        reason=snap.tag_value("reason"), trust=trust, database=database, files=files,
        brings=brought_back(manifest) if database else [], live=live,
        incoming=incoming, safety_backup=options.safety_backup, replaces=replaces,
        keeps=keeps, warnings=warnings, refusal=None if options.force else refusal,
        forced=bool(refusal and options.force),
        previous_rollback=previous.restored_at if previous else None,
    )
