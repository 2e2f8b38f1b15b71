"""``flowsafe status``: per site, the newest backup and its age, the last attempt's
result on this machine, and the repository size; stale means exit 1."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from flowsafe import runs
from flowsafe.config import Config
from flowsafe.drill import record
from flowsafe.mariadb.connection import connect
from flowsafe.scan import scan_tree
from flowsafe.sites import Site, open_site
from flowsafe.swap import journal


@dataclass(frozen=True)
class Rollback:
    """State the last restore replaced, kept for ``flowsafe undo``."""

    restored_at: datetime
    snapshot: str
    database: str | None
    folder: str | None
    bytes: int


def rollback_status(state_dir: Path, site: Site) -> Rollback | None:
    kept = journal.read(state_dir, site.name).rollback
    if kept is None:
        return None
    size = 0
    if kept.files is not None and kept.files.sink.is_dir():
        size += scan_tree(kept.files.sink, []).bytes
    if kept.db is not None:
        with connect(site.database, database="") as conn, conn.cursor() as cur:
            cur.execute("SELECT COALESCE(SUM(DATA_LENGTH + INDEX_LENGTH), 0) FROM "
                        "information_schema.TABLES WHERE TABLE_SCHEMA = %s", (kept.db.sink,))
            row = cur.fetchone()
            size += int(row[0]) if row else 0
    return Rollback(kept.restored_at, kept.snapshot, kept.db.sink if kept.db else None,
                    str(kept.files.sink) if kept.files else None, size)


@dataclass(frozen=True)
class SiteStatus:
    """One site's health."""

    site: str
    last_backup: datetime | None
    last_backup_id: str | None
    age_hours: float | None
    snapshots: int
    last_attempt: dict[str, Any] | None
    repository: str
    repository_bytes: int
    max_age_hours: float
    last_verified: datetime | None
    last_verified_snapshot: str | None
    ok: bool
    problem: str | None
    rollback: Rollback | None


def _drill_problem(config: Config, first_backup: datetime,
                   verified: record.DrillRecord | None) -> str | None:
    """Stale when the last successful drill (or, never drilled, the first backup) is older
    than the limit."""
    limit = timedelta(days=config.monitoring.max_drill_age_days)
    since = verified.time if verified else first_backup
    if datetime.now(UTC) - since <= limit:
        return None
    if verified is None:
        return f"no successful drill yet (limit {limit.days} days): run `flowsafe drill`"
    return (f"last successful drill was {(datetime.now(UTC) - since).days} days ago (limit "
            f"{config.monitoring.max_drill_age_days:g} days): run `flowsafe drill`")


def site_status(config: Config, name: str) -> SiteStatus:
    """One site's health: its newest backup, last attempt, last drill and kept state."""
    site = open_site(config, name)
    snaps = site.restic.snapshots(site.tags)
    limit = config.monitoring.max_backup_age_hours
    newest = snaps[-1] if snaps else None
    age = (datetime.now(UTC) - newest.time).total_seconds() / 3600 if newest else None
    attempt = runs.read(config.state_dir, site.name).get("backup")
    drills = [d for d in record.history(site.restic, site.name) if d.ok]
    verified = drills[-1] if drills else None
    problem = None
    if newest is None:
        problem = "no backup yet: run `flowsafe backup`"
    elif age is not None and age > limit:
        problem = f"newest backup is {age:.1f} h old (limit {limit:g} h)"
    else:
        problem = _drill_problem(config, snaps[0].time, verified)
    return SiteStatus(
        site=site.name,
        last_backup=newest.time if newest else None,
        last_backup_id=newest.short_id if newest else None,
        age_hours=age,
        snapshots=len(snaps),
        last_attempt=attempt,
        repository=site.restic.repo.url,
        repository_bytes=site.restic.raw_size(),
        max_age_hours=limit,
        last_verified=verified.time if verified else None,
        last_verified_snapshot=verified.snapshot if verified else None,
        ok=problem is None,
        problem=problem,
        rollback=rollback_status(config.state_dir, site),
    )
