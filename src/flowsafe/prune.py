"""``flowsafe prune``: GFS retention per site through restic forget + prune.

Only snapshots tagged ``flowsafe`` and ``site:<name>`` are considered, so
snapshots that flowsafe did not make are never touched.
"""

from __future__ import annotations

from dataclasses import dataclass

from flowsafe.config import Config
from flowsafe.session import locked_site


@dataclass(frozen=True)
class PruneResult:
    """Per site: which snapshots stay and which go (or would go, with --dry-run)."""

    site: str
    kept: list[str]
    removed: list[str]
    dry_run: bool


def run_prune(config: Config, site_name: str | None, *, dry_run: bool) -> list[PruneResult]:
    """Apply the retention policy to one site, or to every site without ``--site``."""
    names = [site_name] if site_name else list(config.sites)
    results = []
    for name in names:
        with locked_site(config, name, "prune") as site:
            site.restic.unlock()
            outcome = site.restic.forget(
                tags=site.tags, keep=config.retention.policy(), prune=not dry_run,
                dry_run=dry_run,
            )
        results.append(PruneResult(site.name, outcome.kept, outcome.removed, dry_run))
    return results
