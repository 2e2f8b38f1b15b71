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

from flowsafe import runs
from flowsafe.catalog import SAFETY_REASONS
from flowsafe.config import Config, select_site
from flowsafe.restic import Restic, Snapshot
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


def _forget(config: Config, restic: Restic, tags: list[str], snaps: dict[str, Snapshot],
            dry_run: bool) -> tuple[list[str], list[str]]:
    """(kept, removed) ids: the GFS rules over regular backups, the safety rule over safety
    snapshots."""
    reasons = {s.tag_value("reason") or "" for s in snaps.values()} - {""}
    regular = restic.forget(
        tag_sets=[[*tags, f"reason:{r}"] for r in sorted(reasons - SAFETY_REASONS)],
        keep=config.retention.policy(), dry_run=dry_run)
    days = config.retention.keep_safety_days
    if days:
        safety = restic.forget(
            tag_sets=[[*tags, f"reason:{r}"] for r in sorted(reasons & SAFETY_REASONS)],
            keep={"within": f"{days}d"}, dry_run=dry_run)
        return [*regular.kept, *safety.kept], [*regular.removed, *safety.removed]
    gone = [i for i, s in snaps.items() if s.tag_value("reason") in SAFETY_REASONS]
    if not dry_run:
        restic.forget_ids(gone)
    return regular.kept, [*regular.removed, *gone]


def prune_site(config: Config, site_name: str, *, dry_run: bool) -> PruneResult:
    """Apply the retention policy to one configured site, under its lock; recorded for
    ``log`` (not a dry run)."""
    select_site(config, site_name)
    with runs.recording(config.state_dir, site_name, "prune") as entry, \
            locked_site(config, site_name, "prune") as site:
        entry.skip = dry_run
        site.restic.unlock()
        snaps = {s.id: s for s in site.restic.snapshots(site.tags)}
        kept, removed = _forget(config, site.restic, site.tags, snaps, dry_run)
        if removed and not dry_run:
            site.restic.prune()
    named = [Removed(i, snaps[i].short_id, snaps[i].time, snaps[i].tag_value("reason"))
             for i in removed if i in snaps]
    return PruneResult(site.name, kept, sorted(named, key=lambda r: r.time), dry_run)
