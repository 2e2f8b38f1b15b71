"""Where a site's repositories are: on the machine the site runs on, or off it.

A repository is on this machine when restic reaches it as a local path that is not on a
network file system (NFS, CIFS, sshfs...); a backend URL (s3:, sftp:, rest:, b2:...)
counts as elsewhere, even with a local host name, which may be a tunnel. A site whose
every repository is on its own machine has no off-site copy: the day the VM dies, its
backups die with it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from flowsafe.config import Config

NETWORK_FILESYSTEMS = frozenset({"nfs", "nfs4", "cifs", "smb3", "smbfs", "fuse.sshfs",
                                 "fuse.rclone", "glusterfs", "fuse.glusterfs", "ceph",
                                 "fuse.s3fs", "davfs", "fuse.davfs2"})
NOT_OFFSITE = "not off-site: add a copy, see copy_to"


@dataclass(frozen=True)
class Placement:
    """One repository of a site and whether it is off the site's machine."""

    name: str
    url: str
    offsite: bool


def _mounts() -> list[tuple[str, str]]:
    """(mount point, file system type) of every mount, from /proc/self/mounts."""
    try:
        lines = Path("/proc/self/mounts").read_text().splitlines()
    except OSError:
        return []
    found = []
    for line in lines:
        fields = line.split()
        if len(fields) >= 3:
            found.append((fields[1].replace("\\040", " "), fields[2]))
    return found


def _on_network_filesystem(path: Path) -> bool:
    """Whether ``path`` (or, not made yet, its nearest existing parent) is on a network
    file system."""
    probe = Path(os.path.abspath(path))
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    resolved = str(probe.resolve())
    best, kind = "", ""
    for point, fstype in _mounts():
        inside = resolved == point or resolved.startswith(point.rstrip("/") + "/")
        if inside and len(point) >= len(best):
            best, kind = point, fstype
    return kind in NETWORK_FILESYSTEMS


def on_this_machine(url: str) -> bool:
    """Whether a restic repository URL is on the machine flowsafe runs on."""
    if url.startswith("local:"):
        url = url.removeprefix("local:")
    elif ":" in url.split("/", 1)[0]:
        return False  # s3:, sftp:, rest:, b2:, rclone: ... (a host name may be a tunnel)
    return not _on_network_filesystem(Path(url))


def placements(config: Config, site: str) -> list[Placement]:
    """A configured site's repositories, off-site ones first (else in the config's order:
    its own, then its copies)."""
    entry = config.sites[site]
    found = [Placement(name, config.repositories[name].url,
                       not on_this_machine(config.repositories[name].url))
             for name in (entry.repository, *entry.copy_to)]
    return sorted(found, key=lambda p: not p.offsite)


def offsite_warning(config: Config, site: str) -> str | None:
    """The warning for a configured site that has no repository off its machine."""
    found = placements(config, site)
    if any(p.offsite for p in found):
        return None
    where = ", ".join(p.url for p in found)
    return (f"{NOT_OFFSITE} (the only repository, {where}, is on the same machine as the "
            "site and dies with it)" if len(found) == 1 else
            f"{NOT_OFFSITE} (every repository, {where}, is on the same machine as the site)")
