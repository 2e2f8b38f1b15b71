"""``flowsafe prune``: retention per site and per repository (the site's own and each of
its ``copy_to`` copies) through restic forget, then one prune per repository.

Only snapshots tagged ``flowsafe`` and ``site:<name>`` are considered, so snapshots
that flowsafe did not make (and its drill and key records) are never touched. The
GFS rules count the scheduled and manual backups only; safety snapshots (taken
before a restore, rewrap or update) have their own rule (``keep_safety_days``), so
they never push out the backups a restore may need. Every removed snapshot is
named. A copy repository that cannot be pruned (S3 down) is reported and the
others are still pruned; the site's own repository failing fails the command.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime

from flowsafe import runs
from flowsafe.catalog import SAFETY_REASONS
from flowsafe.config import Config, select_site
from flowsafe.errors import FlowsafeError
from flowsafe.notify import announce, records
from flowsafe.notify.outcome import Outcome
from flowsafe.restic import RepositoryMissingError, Restic
from flowsafe.session import locked_site
from flowsafe.sites import Site, repository


@dataclass(frozen=True)
class Removed:
    """A snapshot retention removes (or would remove)."""

    id: str
    short_id: str
    time: datetime
    reason: str | None


@dataclass(frozen=True)
class PruneResult:
    """Per site and repository: which snapshots stay and which go (or would go)."""

    site: str
    kept: list[str]
    removed: list[Removed]
    dry_run: bool
    repository: str = ""
    error: str | None = None


def _forget(config: Config, restic: Restic, site: Site, dry_run: bool
            ) -> tuple[list[str], list[Removed]]:
    """(kept ids, removed snapshots) in one repository: the GFS rules over regular
    backups, the safety rule over safety snapshots; then the prune."""
    snaps = {s.id: s for s in restic.snapshots(site.tags)}
    reasons = {s.tag_value("reason") or "" for s in snaps.values()} - {""}
    regular = restic.forget(
        tag_sets=[[*site.tags, f"reason:{r}"] for r in sorted(reasons - SAFETY_REASONS)],
        keep=config.retention.policy(), dry_run=dry_run)
    kept, removed = regular.kept, regular.removed
    if days := config.retention.keep_safety_days:
        safety = restic.forget(
            tag_sets=[[*site.tags, f"reason:{r}"] for r in sorted(reasons & SAFETY_REASONS)],
            keep={"within": f"{days}d"}, dry_run=dry_run)
        kept, removed = [*kept, *safety.kept], [*removed, *safety.removed]
    else:
        gone = [i for i, s in snaps.items() if s.tag_value("reason") in SAFETY_REASONS]
        if not dry_run:
            restic.forget_ids(gone)
        removed = [*removed, *gone]
    if removed and not dry_run:
        restic.prune()
    named = [Removed(i, snaps[i].short_id, snaps[i].time, snaps[i].tag_value("reason"))
             for i in removed if i in snaps]
    return kept, sorted(named, key=lambda r: r.time)


def _prune_copies(config: Config, site: Site, dry_run: bool) -> list[PruneResult]:
    results = []
    for name in site.config.copy_to:
        try:
            restic = repository(config, name)
            restic.unlock()
            kept, removed = _forget(config, restic, site, dry_run)
        except RepositoryMissingError:
            continue  # not created yet: the first copy creates it
        except FlowsafeError as exc:
            results.append(PruneResult(site.name, [], [], dry_run, name, str(exc)))
            continue
        results.append(PruneResult(site.name, kept, removed, dry_run, name))
    return results


def prune_site(config: Config, site_name: str, *, dry_run: bool) -> list[PruneResult]:
    """Apply the retention policy to one configured site in each of its repositories,
    under its lock; recorded for ``log`` and told (``notify.announce``), unless a dry run."""
    select_site(config, site_name)
    started = time.monotonic()
    try:
        with runs.recording(config.state_dir, site_name, "prune") as entry, \
                locked_site(config, site_name, "prune") as site:
            entry.skip = dry_run
            site.restic.unlock()
            if not dry_run:  # a year of run records for reports; the prune frees them
                site.restic.forget_older([records.RUN_TAG, f"site:{site.name}"],
                                         records.KEEP_WITHIN)
            kept, removed = _forget(config, site.restic, site, dry_run)
            done = [PruneResult(site.name, kept, removed, dry_run, site.config.repository),
                    *_prune_copies(config, site, dry_run)]
    except Exception as exc:
        if not dry_run:
            announce.after_run(config, Outcome.failed(site_name, "prune", exc,
                                                      time.monotonic() - started))
        raise
    if not dry_run:  # a look, not a run: nothing to tell
        failed = [f"'{r.repository}': {r.error}" for r in done if r.error]
        announce.after_run(config, Outcome(
            site_name, "prune", not failed, "; ".join(failed) or None,
            duration=time.monotonic() - started,
            detail=", ".join(f"{r.repository} keeps {len(r.kept)}" for r in done)))
    return done
