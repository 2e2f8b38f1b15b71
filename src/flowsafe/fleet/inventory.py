"""One listing of a repository, sorted by site and kind of record.

``restic snapshots`` reads every snapshot file of a repository whatever the tag filter, so
status and the report list a repository once and sort the result here instead of asking
restic once per kind of record.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from flowsafe.config import Config
from flowsafe.drill.record import DRILL_TAG, DrillRecord, from_snapshot
from flowsafe.errors import FlowsafeError
from flowsafe.keys.escrow import KEY_TAG
from flowsafe.notify.records import RUN_TAG, RunRecord
from flowsafe.notify.records import from_snapshot as run_from_snapshot
from flowsafe.restic import RepositoryMissingError, Restic, Snapshot
from flowsafe.sites import SNAPSHOT_TAG, repository


@dataclass(frozen=True)
class SiteRecords:
    """One site's snapshots in one repository, oldest first."""

    backups: list[Snapshot]
    drills: list[DrillRecord]
    keys: list[Snapshot]
    runs: list[RunRecord]


@dataclass
class Inventory:
    """Everything one repository holds, or why it could not be listed."""

    name: str
    restic: Restic
    snapshots: list[Snapshot]
    error: str | None = None
    exception: FlowsafeError | None = None

    def sites(self) -> set[str]:
        """Every site with a backup, drill, key or run record here."""
        kinds = (SNAPSHOT_TAG, DRILL_TAG, KEY_TAG, RUN_TAG)
        return {name for s in self.snapshots if any(k in s.tags for k in kinds)
                if (name := s.tag_value("site"))}

    def _of(self, site: str, kind: str) -> list[Snapshot]:
        return [s for s in self.snapshots if kind in s.tags and s.tag_value("site") == site]

    def site(self, site: str) -> SiteRecords:
        return SiteRecords(
            backups=[s for s in self._of(site, SNAPSHOT_TAG) if s.tag_value("reason")],
            drills=[from_snapshot(s, site) for s in self._of(site, DRILL_TAG)],
            keys=self._of(site, KEY_TAG),
            runs=[run_from_snapshot(s, site) for s in self._of(site, RUN_TAG)],
        )


def list_repository(config: Config, name: str) -> Inventory:
    """The repository's snapshots; a repository that cannot be read says why instead."""
    restic = repository(config, name)
    try:
        return Inventory(name, restic, restic.snapshots())
    except RepositoryMissingError as exc:
        return Inventory(name, restic, [], "not created yet (the first copy creates it)", exc)
    except FlowsafeError as exc:
        return Inventory(name, restic, [], str(exc), exc)


def site_repositories(config: Config, site: str, primary: str | None) -> list[str]:
    """The repositories a site lives in: its own first, then its copies; a site found only
    in a repository (fleet view) lives in that one."""
    configured = config.sites.get(site)
    if configured is not None:
        return [configured.repository, *configured.copy_to]
    return [primary] if primary else []


def fleet(config: Config, inventories: Iterable[Inventory]) -> dict[str, str]:
    """Every site: the configured ones (with their repository) and every site found in a
    listed repository (with the first repository it was found in)."""
    found = {name: site.repository for name, site in config.sites.items()}
    for inventory in inventories:
        for name in sorted(inventory.sites()):
            found.setdefault(name, inventory.name)
    return found
