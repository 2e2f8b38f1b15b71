"""Which site and snapshot a recover brings back: the newest snapshot of the only site
the repository holds, or the one ``--site``/``--snapshot`` name; when there is a choice
and nothing says which, the sites are listed (exit 2)."""

from __future__ import annotations

from flowsafe.catalog import resolve
from flowsafe.errors import ConfigError
from flowsafe.restic import Restic, Snapshot
from flowsafe.sites import SNAPSHOT_TAG


def _listing(by_site: dict[str, list[Snapshot]]) -> str:
    return "; ".join(f"{name} ({len(snaps)} snapshots, newest {snaps[-1].short_id} of "
                     f"{snaps[-1].time.astimezone():%Y-%m-%d %H:%M})"
                     for name, snaps in sorted(by_site.items()))


def choose(restic: Restic, site: str | None, snapshot: str) -> tuple[str, Snapshot]:
    """The site and the snapshot to recover."""
    by_site: dict[str, list[Snapshot]] = {}
    for snap in restic.snapshots([SNAPSHOT_TAG]):
        name = snap.tag_value("site")
        if name and snap.tag_value("reason") is not None:
            by_site.setdefault(name, []).append(snap)
    where = restic.repo.display_url
    if not by_site:
        raise ConfigError(f"{where} holds no flowsafe backup: check the repository URL (the "
                          "recovery sheet names it) and that backups were written there")
    if site is None:
        if len(by_site) > 1:
            raise ConfigError(f"{where} holds several sites: pass --site NAME, one of: "
                              f"{_listing(by_site)}")
        site = next(iter(by_site))
    elif site not in by_site:
        raise ConfigError(f"no backup of site '{site}' in {where}; sites found: "
                          f"{_listing(by_site)}")
    return site, resolve(restic, site, snapshot)
