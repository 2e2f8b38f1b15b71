"""Finds a site's snapshots by id, prefix or ``latest``, and reads their manifests.

Every lookup error is a ConfigError (exit 2) that says what was wrong with the
reference and how to find the right one.
"""

from __future__ import annotations

import re

from flowsafe.config import Config
from flowsafe.errors import ConfigError, FlowsafeError
from flowsafe.manifest import MANIFEST_NAME, Manifest
from flowsafe.restic import Restic, Snapshot
from flowsafe.sites import SNAPSHOT_TAG, open_site, repository


def resolve(restic: Restic, site: str, ref: str) -> Snapshot:
    """The snapshot ``ref`` names (``latest``, an id or a unique id prefix) for ``site``."""
    if ref == "latest":
        own = restic.snapshots([SNAPSHOT_TAG, f"site:{site}"])
        backups = [s for s in own if s.tag_value("reason") is not None]
        if not backups:
            raise ConfigError(f"site '{site}' has no snapshot yet: run `flowsafe backup` first")
        return backups[-1]
    if not re.fullmatch(r"[0-9a-f]{1,64}", ref):
        raise ConfigError(f"'{ref}' is not a snapshot id: use `latest` or an id from "
                          "`flowsafe snapshots`")
    matches = [s for s in restic.snapshots() if s.id.startswith(ref)]
    if not matches:
        raise ConfigError(f"no snapshot '{ref}' in {restic.repo.display_url}: list them with "
                          "`flowsafe snapshots`")
    if len(matches) > 1:
        ids = ", ".join(s.short_id for s in matches[:5])
        raise ConfigError(f"snapshot id '{ref}' is ambiguous ({len(matches)} match: {ids}); "
                          "give more characters")
    snap = matches[0]
    if SNAPSHOT_TAG not in snap.tags or snap.tag_value("reason") is None:
        raise ConfigError(f"snapshot {snap.short_id} was not made by flowsafe backup; restore "
                          "it with restic directly")
    owner = snap.tag_value("site")
    if owner != site:
        raise ConfigError(f"snapshot {snap.short_id} belongs to site '{owner}', not '{site}': "
                          f"pass --site {owner}")
    return snap


def staging_path(snap: Snapshot, site: str) -> str:
    """Where the snapshot keeps the manifest and the dump (``.../staging/<site>``)."""
    for path in snap.paths:
        if path.rstrip("/").endswith(f"/staging/{site}"):
            return path.rstrip("/")
    raise FlowsafeError(f"snapshot {snap.short_id} has no staging folder for site '{site}': "
                        "it is damaged or not a flowsafe backup")


def read_manifest(restic: Restic, snap: Snapshot, site: str) -> Manifest:
    """The manifest stored in the snapshot."""
    raw = restic.dump(snap.id, f"{staging_path(snap, site)}/{MANIFEST_NAME}")
    try:
        return Manifest.parse(raw)
    except ValueError as exc:
        raise FlowsafeError(f"snapshot {snap.short_id}: manifest.json is unreadable ({exc}); "
                            "try an older snapshot") from None


def site_repository(config: Config, site_name: str | None) -> tuple[str, Restic]:
    """The site name (for snapshot tags) and its repository, even when the site is not
    installed here (a new server attached with ``flowsafe init --repo``)."""
    if site_name in config.sites or (site_name is None and config.sites):
        site = open_site(config, site_name)
        return site.name, site.restic
    if site_name is None:
        raise ConfigError("no site configured here: pass --site NAME (the name in "
                          "`flowsafe snapshots` of the repository)")
    if len(config.repositories) != 1:
        raise ConfigError("several repositories configured: configure the site, or keep one")
    return site_name, repository(config, next(iter(config.repositories)))
