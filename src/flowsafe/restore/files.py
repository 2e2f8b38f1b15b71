"""The folder side of a restore: a tree from the snapshot at a new path, the live tree's
excluded folders carried over, and single files or folders to anywhere.

restic writes into a landing folder created exclusively (0700, random name) beside
the destination; the tree is then renamed into place. Targets are checked first
(``paths.check_target``), and nothing follows a symlink the snapshot holds: a
snapshot whose ``uploads`` is a symlink gets no carried-over folders through it.
"""

from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path

from flowsafe import paths
from flowsafe.errors import ConfigError, FlowsafeError
from flowsafe.restic import Restic, Snapshot, pattern

log = logging.getLogger(__name__)


def sibling(path: Path, role: str, token: str) -> Path:
    """``/var/www/itflow`` -> ``/var/www/itflow.flowsafe-<role>-<token>`` (same filesystem)."""
    return path.with_name(f"{path.name}.flowsafe-{role}-{token}")


def _landing_prefix(dest: Path) -> str:
    return f".{dest.name}.landing-"


def remove_landings(dest: Path) -> None:
    """Remove the landing folders that a restore into ``dest`` killed midway left beside it."""
    if dest.parent.is_dir():
        for landing in dest.parent.glob(_landing_prefix(dest) + "*"):
            shutil.rmtree(landing, ignore_errors=True)


def _restore_into(restic: Restic, snap: Snapshot, wanted: str, dest: Path) -> None:
    """Restore the snapshot's ``wanted`` (absolute, as backed up) to the new path ``dest``."""
    if dest.exists() or dest.is_symlink():
        raise FlowsafeError(f"{dest} already exists: refusing to restore over it")
    landing = paths.private_folder(dest.parent, _landing_prefix(dest))
    try:
        restic.restore(snap.id, landing, includes=[pattern(wanted)])
        found = landing / wanted.lstrip("/")
        if not found.exists() and not found.is_symlink():
            raise ConfigError(f"'{wanted}' is not in snapshot {snap.short_id}: check the path "
                              "with `restic ls`")
        os.rename(found, dest)
    except OSError as exc:
        raise FlowsafeError(f"cannot restore files to {dest}: {exc.strerror}; free space or "
                            "check the folder") from None
    finally:
        shutil.rmtree(landing, ignore_errors=True)


def restore_tree(restic: Restic, snap: Snapshot, root: str, dest: Path) -> None:
    """The snapshot's site folder ``root`` at the new path ``dest``, with restic's recorded
    owners and modes."""
    paths.check_target(dest.parent, "the restore's folder")
    _restore_into(restic, snap, root, dest)
    if not dest.is_dir() or dest.is_symlink():
        shutil.rmtree(dest, ignore_errors=True)
        raise FlowsafeError(f"snapshot {snap.short_id} holds no folder {root}")


def _link_tree(source: Path, dest: Path) -> None:
    """Copy a tree as hard links (no data copied), keeping folder modes and owners."""
    for folder, dirs, names in os.walk(source):
        rel = Path(folder).relative_to(source)
        target = dest / rel
        target.mkdir(exist_ok=True)
        info = os.stat(folder)
        os.chmod(target, info.st_mode & 0o7777)
        os.chown(target, info.st_uid, info.st_gid)
        for name in names:
            os.link(Path(folder) / name, target / name, follow_symlinks=False)
        dirs.sort()


def _through_symlink(root: Path, rel: Path) -> bool:
    """Whether ``root/rel`` (or a folder on the way) is a symlink."""
    current = root
    for part in rel.parts:
        current = current / part
        if current.is_symlink():
            return True
    return False


def carry_over(live: Path, new: Path, excludes: list[str]) -> None:
    """Put the live tree's excluded folders (uploads/tmp, uploads/backups) into the new tree,
    never through a symlink of either tree."""
    for rel in excludes:
        inner = Path(rel.strip("/"))
        if _through_symlink(live, inner) or _through_symlink(new, inner):
            log.warning("not carrying %s over: a symlink is on the way", rel)
            continue
        source, dest = live / inner, new / inner
        if source.is_dir() and not dest.exists() and dest.parent.is_dir():
            _link_tree(source, dest)


def restore_path(restic: Restic, snap: Snapshot, root: str, rel: str, to_dir: Path,
                 production: list[Path]) -> Path:
    """Restore one file or folder of the site (``rel`` under ``root``) into ``to_dir``."""
    to_dir = to_dir.absolute()
    paths.check_target(to_dir, "--to")
    resolved = to_dir.resolve()
    for live in production:
        if resolved == live or live in resolved.parents:
            raise ConfigError(f"--to {to_dir} is inside the live site {live}: choose a folder "
                              "outside production")
    inner = Path(rel.strip("/"))
    if Path(rel).is_absolute():
        try:
            inner = Path(rel).relative_to(root)
        except ValueError:
            raise ConfigError(f"{rel} is not inside the site folder {root}") from None
    if ".." in inner.parts or not inner.parts:
        raise ConfigError(f"'{rel}' is not a path inside the site (like uploads/clients/12)")
    dest = to_dir / inner.name
    if dest.exists() or dest.is_symlink():
        raise ConfigError(f"{dest} already exists: choose another --to folder")
    to_dir.mkdir(parents=True, exist_ok=True)
    _restore_into(restic, snap, f"{root.rstrip('/')}/{inner}", dest)
    return dest
