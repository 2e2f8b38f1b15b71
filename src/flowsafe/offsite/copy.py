"""``flowsafe copy`` and the copy after each backup.

What is copied: the site's backups (``flowsafe``, ``site:<name>``) and its key escrow
records (``flowsafe-key``), so that the off-site repository alone can restore the site
and open its master key. Drill and run records stay where they were made: a drill
proves the repository it ran on, and ``drill --repository`` proves the copy.

A destination that does not exist yet is created (format 2, with the source's chunker
parameters, so that copies deduplicate as they do at home). restic skips snapshots that
are already copied, so an interrupted copy (``kill -9``, S3 down) completes on the next
run without duplicates. One copy per site at a time (the site's lock, action ``copy``).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

from flowsafe import runs
from flowsafe.config import Config
from flowsafe.errors import EXIT_OK, ConfigError, FlowsafeError
from flowsafe.keys.escrow import KEY_TAG
from flowsafe.lock import site_lock
from flowsafe.restic import Restic
from flowsafe.sites import SNAPSHOT_TAG, repository

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CopyOutcome:
    """One site copied (or not) into one repository."""

    site: str
    repository: str
    ok: bool
    copied: int
    already_there: int
    created: bool
    seconds: float
    error: str | None = None
    exit_code: int = EXIT_OK


def named(config: Config, name: str) -> Restic:
    """The configured repository ``name`` (a clear error for a name that is not there)."""
    if name not in config.repositories:
        known = ", ".join(config.repositories) or "none"
        raise ConfigError(f"no repository named '{name}' in [repositories] (known: {known})")
    return repository(config, name)


def selections(site: str) -> list[list[str]]:
    """The snapshots of a site that a copy carries."""
    return [[SNAPSHOT_TAG, f"site:{site}"], [KEY_TAG, f"site:{site}"]]


def _copy(config: Config, site: str, to: str) -> tuple[int, int, bool]:
    source = repository(config, config.sites[site].repository)
    destination = named(config, to)
    with site_lock(config.state_dir, site, "copy") as held:
        if held.previous_crashed:
            log.warning("the previous flowsafe %s of '%s' did not finish; removing stale "
                        "restic locks", held.previous.get("action", "run"), site)
            source.unlock()
            if destination.exists():
                destination.unlock()
        created = not destination.exists()
        if created:
            destination.init_like(source)
            log.info("created repository '%s' at %s", to, destination.repo.display_url)
        result = destination.copy_from(source, selections(site))
    return result.copied, result.skipped, created


def copy_site(config: Config, site: str, to: str) -> CopyOutcome:
    """Copy one site into one repository; a failure is recorded and returned, not raised."""
    started = time.monotonic()
    try:
        copied, skipped, created = _copy(config, site, to)
    except FlowsafeError as exc:
        runs.record(config.state_dir, site, f"copy:{to}", ok=False, error=str(exc))
        return CopyOutcome(site, to, False, 0, 0, False, time.monotonic() - started,
                           str(exc), exc.exit_code)
    runs.record(config.state_dir, site, f"copy:{to}", ok=True,
                reason=f"{copied} copied, {skipped} already there")
    return CopyOutcome(site, to, True, copied, skipped, created, time.monotonic() - started)


def targets(config: Config, site_name: str | None, to: str | None) -> list[tuple[str, str]]:
    """(site, repository) pairs for ``flowsafe copy [--site] [--to]``."""
    if site_name is not None and site_name not in config.sites:
        known = ", ".join(config.sites) or "none"
        raise ConfigError(f"no site named '{site_name}' in the config (known: {known})")
    if to is not None:
        named(config, to)
    names = [site_name] if site_name else list(config.sites)
    pairs = []
    for name in names:
        site = config.sites[name]
        if to is not None:
            if to == site.repository:
                raise ConfigError(f"'{to}' is the own repository of site '{name}': --to names "
                                  "another one")
            pairs.append((name, to))
        else:
            pairs += [(name, repo) for repo in site.copy_to]
    if not pairs:
        raise ConfigError("nothing to copy: set copy_to = [\"NAME\"] under [sites.NAME] (a "
                          "repository of [repositories]), or pass --to NAME")
    return pairs


def run_copy(config: Config, site_name: str | None, to: str | None) -> list[CopyOutcome]:
    """Copy each site into its ``copy_to`` repositories (or into ``--to``); each copy is
    told like any other command (notifications, run record, metrics)."""
    from flowsafe.notify import announce

    outcomes = []
    for site, repo in targets(config, site_name, to):
        outcome = copy_site(config, site, repo)
        announce.after_run(config, announce.copy_outcome(outcome))
        outcomes.append(outcome)
    return outcomes
