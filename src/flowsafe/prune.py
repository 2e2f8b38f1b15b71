"""``flowsafe prune``: GFS retention per site and per repository (the site's own and each
of its ``copy_to`` copies) through restic forget + prune.

Only snapshots tagged ``flowsafe`` and ``site:<name>`` are considered, so
snapshots that flowsafe did not make are never touched. A copy repository that cannot
be pruned (S3 down) is reported and the others are still pruned; the site's own
repository failing fails the command as before.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from flowsafe.config import Config
from flowsafe.errors import FlowsafeError
from flowsafe.notify import hooks, records
from flowsafe.notify.outcome import Outcome
from flowsafe.restic import RepositoryMissingError
from flowsafe.session import locked_site
from flowsafe.sites import Site, repository


@dataclass(frozen=True)
class PruneResult:
    """Per site and repository: which snapshots stay and which go (or would go)."""

    site: str
    kept: list[str]
    removed: list[str]
    dry_run: bool
    repository: str = ""
    error: str | None = None


def _prune_copies(config: Config, site: Site, dry_run: bool) -> list[PruneResult]:
    results = []
    for name in site.config.copy_to:
        restic = repository(config, name)
        try:
            restic.unlock()
            outcome = restic.forget(tags=site.tags, keep=config.retention.policy(),
                                    prune=not dry_run, dry_run=dry_run)
        except RepositoryMissingError:
            continue  # not created yet: the first copy creates it
        except FlowsafeError as exc:
            results.append(PruneResult(site.name, [], [], dry_run, name, str(exc)))
            continue
        results.append(PruneResult(site.name, outcome.kept, outcome.removed, dry_run, name))
    return results


def run_prune(config: Config, site_name: str | None, *, dry_run: bool) -> list[PruneResult]:
    """Apply the retention policy to one site, or to every site without ``--site``."""
    names = [site_name] if site_name else list(config.sites)
    results = []
    for name in names:
        started = time.monotonic()
        try:
            with locked_site(config, name, "prune") as site:
                site.restic.unlock()
                if not dry_run:  # a year of run records for reports; the prune frees them
                    site.restic.forget_older([records.RUN_TAG, f"site:{site.name}"],
                                             records.KEEP_WITHIN)
                outcome = site.restic.forget(
                    tags=site.tags, keep=config.retention.policy(), prune=not dry_run,
                    dry_run=dry_run,
                )
                done = [PruneResult(site.name, outcome.kept, outcome.removed, dry_run,
                                    site.config.repository),
                        *_prune_copies(config, site, dry_run)]
        except Exception as exc:
            if not dry_run and name is not None and name in config.sites:
                hooks.after_run(config, Outcome.failed(name, "prune", exc,
                                                       time.monotonic() - started))
            raise
        failed = [f"'{r.repository}': {r.error}" for r in done if r.error]
        if dry_run:  # a look, not a run: nothing to tell
            results += done
            continue
        hooks.after_run(config, Outcome(
            site.name, "prune", not failed, "; ".join(failed) or None,
            duration=time.monotonic() - started,
            detail=", ".join(f"{r.repository} keeps {len(r.kept)}" for r in done)))
        results += done
    return results
