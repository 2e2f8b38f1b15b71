"""Finds a site's snapshots by id, prefix or ``latest``, and reads their signed manifests.

``latest`` is the newest snapshot that is not a safety snapshot (the ones flowsafe
takes before a restore, a rewrap or an update), unless asked to include them: a
restore that failed after its safety backup must not make ``latest`` the damaged
state. Every lookup error is a ConfigError (exit 2) that says what was wrong and how
to find the right snapshot; a manifest that is unsigned, wrongly signed, of another
site or at odds with its snapshot is a VerificationError (exit 3).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from flowsafe import signature
from flowsafe.config import Config
from flowsafe.errors import ConfigError, FlowsafeError, ToolError, VerificationError
from flowsafe.manifest import MANIFEST_NAME, Manifest
from flowsafe.restic import Restic, Snapshot
from flowsafe.signature import Trust
from flowsafe.sites import SNAPSHOT_TAG, open_site, repository

SAFETY_REASONS = frozenset({"pre-restore", "pre-rewrap", "pre-update"})
CLOCK_SLACK = timedelta(seconds=2)


def is_safety(snap: Snapshot) -> bool:
    return snap.tag_value("reason") in SAFETY_REASONS


def resolve(restic: Restic, site: str, ref: str, *, include_safety: bool = False) -> Snapshot:
    """The snapshot ``ref`` names (``latest``, an id or a unique id prefix) for ``site``."""
    if ref == "latest":
        own = restic.snapshots([SNAPSHOT_TAG, f"site:{site}"])
        backups = [s for s in own if s.tag_value("reason") is not None
                   and (include_safety or not is_safety(s))]
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


@dataclass(frozen=True)
class TrustOptions:
    """What the command line adds to a site's own signing key."""

    unsigned: bool = False
    key_files: tuple[Path, ...] = ()
    keys: tuple[bytes, ...] = ()  # from an escrow or shares the command was given


def trust_for(config: Config, site: str, options: TrustOptions) -> Trust:
    """The keys that may have signed ``site``'s snapshots: the site's own key file (when
    the site is configured here), the files and keys given."""
    files = [*options.key_files]
    if site in config.sites:
        files.append(config.signing_key_file(site))
    return Trust.of([*signature.keys_in_files(files), *options.keys], options.unsigned)


@dataclass(frozen=True)
class Checked:
    """A snapshot's manifest, checked, and how it is trusted (for plans and reports)."""

    manifest: Manifest
    trust: str


def read_manifest(restic: Restic, snap: Snapshot, site: str, trust: Trust) -> Checked:
    """The snapshot's manifest, after checking its signature and that it describes this
    snapshot of this site."""
    where = f"snapshot {snap.short_id}"
    try:
        raw = restic.dump(snap.id, f"{staging_path(snap, site)}/{MANIFEST_NAME}")
    except ToolError as exc:
        if "not found in snapshot" not in exc.stderr_tail:
            raise
        raise VerificationError(f"{where} has no {MANIFEST_NAME}: it is not a complete "
                                "flowsafe backup (altered, or cut short); refusing it, pick "
                                "another snapshot") from None
    note = signature.verify(snap.tags, raw, trust, where)
    manifest = Manifest.parse(raw, where)
    if manifest.site != site:
        raise VerificationError(f"{where}: its manifest is of site '{manifest.site}', not "
                                f"'{site}': refusing it")
    if abs(manifest.created - snap.time) > CLOCK_SLACK:
        raise VerificationError(
            f"{where} claims the time {snap.time:%Y-%m-%d %H:%M:%S} but its manifest was made "
            f"at {manifest.created:%Y-%m-%d %H:%M:%S}: an older backup presented as a newer "
            "one? Refusing it; pick a snapshot by id")
    return Checked(manifest, note)


def site_repository(config: Config, site_name: str | None) -> tuple[str, Restic]:
    """The site name (for snapshot tags) and its repository, even when the site is not
    installed here (a new server attached with ``flowsafe init --repo``)."""
    if site_name in config.sites or (site_name is None and config.sites):
        site = open_site(config, site_name)
        return site.name, site.restic
    if len(config.repositories) != 1:
        raise ConfigError("several repositories configured: configure the site, or keep one")
    restic = repository(config, next(iter(config.repositories)))
    found = sites_in(restic)
    if site_name is None:
        if len(found) == 1:
            return found[0], restic
        listed = ", ".join(found) if found else "none yet"
        raise ConfigError(f"no site configured here: pass --site NAME (sites in "
                          f"{restic.repo.display_url}: {listed})")
    if site_name not in found:
        listed = ", ".join(found) if found else "none"
        raise ConfigError(f"no snapshot of site '{site_name}' in {restic.repo.display_url} "
                          f"(sites found: {listed})")
    return site_name, restic


def sites_in(restic: Restic) -> list[str]:
    """Every site with a flowsafe snapshot in the repository (from the snapshots' tags)."""
    return sorted({s.tag_value("site") or "" for s in restic.snapshots([SNAPSHOT_TAG])} - {""})
