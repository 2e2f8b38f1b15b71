"""``flowsafe snapshots``: the site's backups as rows, read from snapshot tags alone, in
the site's own repository and in each of its ``copy_to`` copies; on a config only
attached to a repository, the sites its snapshots name."""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from datetime import datetime

from flowsafe.catalog import site_repository
from flowsafe.config import Config
from flowsafe.errors import FlowsafeError
from flowsafe.restic import RepositoryMissingError, Snapshot
from flowsafe.sites import SNAPSHOT_TAG, open_site, repository, site_tags

log = logging.getLogger(__name__)


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
    repository: str = ""


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
            rows += [replace(to_row(s), repository=repo_name)
                     for s in repository(config, repo_name).snapshots([SNAPSHOT_TAG])]
        return sorted(rows, key=lambda r: r.time)
    if not config.sites:
        return _attached(config, site_name)
    site = open_site(config, site_name)
    rows = [replace(to_row(s), repository=site.config.repository)
            for s in site.restic.snapshots(site_tags(site.name))]
    for name in site.config.copy_to:
        try:
            copies = repository(config, name).snapshots(site_tags(site.name))
        except RepositoryMissingError:
            continue  # not created yet: the first copy creates it
        except FlowsafeError as exc:
            log.warning("cannot list the copy repository '%s': %s", name, exc)
            continue
        rows += [replace(to_row(s), repository=name) for s in copies]
    return sorted(rows, key=lambda r: r.time)


def _attached(config: Config, site_name: str | None) -> list[SnapshotRow]:
    """Without a configured site: every flowsafe snapshot of the only repository, or the
    named site's (an unknown name lists the sites found)."""
    if site_name is None and len(config.repositories) == 1:
        restic, tags = repository(config, next(iter(config.repositories))), [SNAPSHOT_TAG]
    else:
        site_name, restic = site_repository(config, site_name)
        tags = site_tags(site_name)
    name = next(iter(config.repositories))
    return [replace(to_row(s), repository=name) for s in restic.snapshots(tags)]
