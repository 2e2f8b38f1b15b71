"""``flowsafe prune``: retention per site through restic forget, then one prune.

Only snapshots tagged ``flowsafe`` and ``site:<name>`` are considered, so snapshots
that flowsafe did not make (and its drill and key records) are never touched. The
GFS rules count the scheduled and manual backups only; safety snapshots (taken
before a restore, rewrap or update) have their own rule (``keep_safety_days``), so
they never push out the backups a restore may need. Every removed snapshot is named.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from flowsafe.catalog import SAFETY_REASONS
from flowsafe.config import Config
from flowsafe.session import locked_site


@dataclass(frozen=True)
class Removed:
    """A snapshot retention removes (or would remove)."""

    id: str
    short_id: str
    time: datetime
    reason: str | None


@dataclass(frozen=True)
class PruneResult:
    """Per site: which snapshots stay and which go (or would go, with --dry-run)."""

    site: str
    kept: list[str]
    removed: list[Removed]
    dry_run: bool


def run_prune(config: Config, site_name: str | None, *, dry_run: bool) -> list[PruneResult]:
    """Apply the retention policy to one site, or to every site without ``--site``."""
    names = [site_name] if site_name else list(config.sites)
    results = []
    for name in names:
        with locked_site(config, name, "prune") as site:
            site.restic.unlock()
            snaps = {s.id: s for s in site.restic.snapshots(site.tags)}
            reasons = {s.tag_value("reason") or "" for s in snaps.values()} - {""}
            regular = site.restic.forget(
                tag_sets=[[*site.tags, f"reason:{r}"] for r in sorted(reasons - SAFETY_REASONS)],
                keep=config.retention.policy(), dry_run=dry_run)
            safety_sets = [[*site.tags, f"reason:{r}"] for r in sorted(reasons & SAFETY_REASONS)]
            days = config.retention.keep_safety_days
            if days:
                safety = site.restic.forget(tag_sets=safety_sets, keep={"within": f"{days}d"},
                                            dry_run=dry_run)
                removed_ids, kept = [*regular.removed, *safety.removed], [*regular.kept,
                                                                          *safety.kept]
            else:
                gone = [i for i, s in snaps.items() if s.tag_value("reason") in SAFETY_REASONS]
                if not dry_run:
                    site.restic.forget_ids(gone)
                removed_ids, kept = [*regular.removed, *gone], regular.kept
            if removed_ids and not dry_run:
                site.restic.prune()
        removed = [Removed(i, snaps[i].short_id, snaps[i].time, snaps[i].tag_value("reason"))
                   for i in removed_ids if i in snaps]
        results.append(PruneResult(site.name, kept, sorted(removed, key=lambda r: r.time),
                                   dry_run))
    return results
