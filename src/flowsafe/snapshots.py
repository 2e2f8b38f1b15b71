"""``flowsafe snapshots``: the site's backups as rows, read from snapshot tags alone."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from flowsafe.config import Config
from flowsafe.restic import Snapshot
from flowsafe.sites import SNAPSHOT_TAG, open_site, repository, site_tags


@dataclass(frozen=True)
class SnapshotRow:
    """One backup as listed: newest last."""

    id: str
    short_id: str
    time: datetime
    site: str | None
    host: str
    reason: str | None
    app_version: str | None
    schema_version: str | None
    bytes: int | None


def to_row(snap: Snapshot) -> SnapshotRow:
    size = snap.tag_value("bytes")
    return SnapshotRow(
        id=snap.id,
        short_id=snap.short_id,
        time=snap.time,
        site=snap.tag_value("site"),
        host=snap.hostname,
        reason=snap.tag_value("reason"),
        app_version=snap.tag_value("app"),
        schema_version=snap.tag_value("schema"),
        bytes=int(size) if size and size.isdigit() else None,
    )


def list_snapshots(config: Config, site_name: str | None) -> list[SnapshotRow]:
    """A site's snapshots; without ``--site`` and several sites, every flowsafe snapshot."""
    if site_name is None and len(config.sites) > 1:
        rows: list[SnapshotRow] = []
        for repo_name in sorted({s.repository for s in config.sites.values()}):
            rows += [to_row(s) for s in repository(config, repo_name).snapshots([SNAPSHOT_TAG])]
        return sorted(rows, key=lambda r: r.time)
    site = open_site(config, site_name)
    return [to_row(s) for s in site.restic.snapshots(site_tags(site.name))]
