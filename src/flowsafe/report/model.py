"""What one site's report says, gathered from its repositories (so a monitoring host that
only attaches to the repository reports on every site found there).

Nothing secret goes in: repository URLs are shown with any password hidden, and neither
the key nor its fingerprint appears.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from flowsafe.catalog import TrustOptions, read_manifest, trust_for
from flowsafe.config import Config
from flowsafe.drill import record
from flowsafe.errors import FlowsafeError
from flowsafe.fleet.inventory import Inventory
from flowsafe.manifest import Manifest
from flowsafe.status import SiteStatus

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Month:
    """A calendar month in UTC."""

    year: int
    month: int

    @property
    def start(self) -> datetime:
        return datetime(self.year, self.month, 1, tzinfo=UTC)

    @property
    def end(self) -> datetime:
        following = self.start + timedelta(days=32)
        return datetime(following.year, following.month, 1, tzinfo=UTC)

    def __str__(self) -> str:
        return f"{self.year:04d}-{self.month:02d}"

    def holds(self, moment: datetime) -> bool:
        return self.start <= moment < self.end


@dataclass(frozen=True)
class BackupRow:
    time: datetime
    snapshot: str
    reason: str
    seconds: float | None
    bytes_added: int | None
    size: int | None  # the site's data (database + files) the backup captured


@dataclass(frozen=True)
class DrillCheck:
    name: str
    result: str
    detail: str


@dataclass(frozen=True)
class DrillRow:
    time: datetime
    repository: str
    snapshot: str
    ok: bool
    checks: list[DrillCheck]


@dataclass(frozen=True)
class RepositoryRow:
    name: str
    url: str
    snapshots: int
    newest: datetime | None
    escrowed: bool
    error: str | None


@dataclass(frozen=True)
class Protected:
    """What the newest backup captured."""

    snapshot_time: datetime
    app_version: str | None
    schema_version: str | None
    database: str
    database_bytes: int
    tables: int
    files: int
    files_bytes: int
    uploads: int
    uploads_bytes: int


@dataclass
class SiteReport:
    """One page."""

    site: str
    month: Month
    generated: datetime
    status: SiteStatus
    retention: dict[str, int]
    protected: Protected | None = None
    backups: list[BackupRow] = field(default_factory=list)
    drills: list[DrillRow] = field(default_factory=list)
    repositories: list[RepositoryRow] = field(default_factory=list)
    size_series: list[tuple[datetime, float]] = field(default_factory=list)
    duration_series: list[tuple[datetime, float]] = field(default_factory=list)


def _protected(manifest: Manifest, when: datetime) -> Protected:
    return Protected(
        snapshot_time=when, app_version=manifest.itflow.app_version,
        schema_version=manifest.itflow.schema_version, database=manifest.database.name,
        database_bytes=manifest.database.total_bytes, tables=len(manifest.database.tables),
        files=manifest.files.count, files_bytes=manifest.files.bytes,
        uploads=manifest.files.uploads_count, uploads_bytes=manifest.files.uploads_bytes,
    )


def _drills(inventory: Inventory, site: str, month: Month) -> list[DrillRow]:
    rows = []
    for drill in inventory.site(site).drills:
        if not month.holds(drill.time):
            continue
        try:
            found = record.body(inventory.restic, drill).get("checks")
            checks = found if isinstance(found, list) else []
        except (FlowsafeError, ValueError) as exc:
            log.warning("cannot read the drill record %s: %s", drill.record_id[:8], exc)
            checks = []
        rows.append(DrillRow(drill.time, inventory.name, drill.snapshot, drill.ok, [
            DrillCheck(str(c.get("name")), str(c.get("result")), str(c.get("detail")))
            for c in checks if isinstance(c, dict)]))
    return rows


def build(config: Config, status: SiteStatus, inventories: dict[str, Inventory],
          month: Month) -> SiteReport:
    """The report of one site for one month."""
    site = status.site
    names = [r.name for r in status.repositories]
    main = inventories[names[0]]
    records = main.site(site)
    report = SiteReport(site=site, month=month, generated=datetime.now(UTC), status=status,
                        retention=config.retention.policy())
    runs = {r.snapshot: r for r in records.runs if r.command == "backup" and r.snapshot}
    for snap in records.backups:
        if not month.holds(snap.time):
            continue
        run = runs.get(snap.short_id[:8])
        size = snap.tag_value("bytes")
        report.backups.append(BackupRow(
            snap.time, snap.short_id, snap.tag_value("reason") or "-",
            run.seconds if run else None, run.bytes_added if run else None,
            int(size) if size and size.isdigit() else None))
    in_month = [s for s in records.backups if s.time < month.end]
    if in_month:
        try:
            # A report describes, it restores nothing: an unverified manifest is read too.
            checked = read_manifest(main.restic, in_month[-1], site, trust_for(
                config, site, TrustOptions(unsigned=True)))
            report.protected = _protected(checked.manifest, in_month[-1].time)
        except FlowsafeError as exc:
            log.warning("cannot read the manifest of %s: %s", in_month[-1].short_id, exc)
    for run in records.runs:
        if run.command == "backup" and run.ok and month.holds(run.time):
            if run.repository_bytes is not None:
                report.size_series.append((run.time, float(run.repository_bytes)))
            if run.seconds is not None:
                report.duration_series.append((run.time, run.seconds))
    for name in names:
        report.drills += _drills(inventories[name], site, month)
    report.drills.sort(key=lambda d: d.time)
    report.repositories = [
        RepositoryRow(r.name, r.url, r.snapshots, r.newest, r.escrowed, r.error)
        for r in status.repositories]
    return report
