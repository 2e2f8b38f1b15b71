"""``flowsafe prune``: GFS retention per site through restic forget + prune.

Only snapshots tagged ``flowsafe`` and ``site:<name>`` are considered, so
snapshots that flowsafe did not make are never touched.
"""

from __future__ import annotations

from dataclasses import dataclass

from flowsafe import runs
from flowsafe.config import Config, select_site
from flowsafe.session import locked_site


@dataclass(frozen=True)
class PruneResult:
    """Per site: which snapshots stay and which go (or would go, with --dry-run)."""

    site: str
    kept: list[str]
    removed: list[str]
    dry_run: bool


def prune_site(config: Config, site_name: str, *, dry_run: bool) -> PruneResult:
    """Apply the retention policy to one configured site, under its lock; recorded for
    ``log`` (not a dry run)."""
    select_site(config, site_name)
    with runs.recording(config.state_dir, site_name, "prune") as entry, \
            locked_site(config, site_name, "prune") as site:
        entry.skip = dry_run
        site.restic.unlock()
        outcome = site.restic.forget(
            tags=site.tags, keep=config.retention.policy(), prune=not dry_run,
            dry_run=dry_run,
        )
    return PruneResult(site.name, outcome.kept, outcome.removed, dry_run)
