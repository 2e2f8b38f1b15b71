"""The folder side of a restore: a sibling tree from the snapshot, excluded folders
carried over from the live tree, and single files or folders to anywhere."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from flowsafe.errors import ConfigError, FlowsafeError
from flowsafe.restic import Restic, Snapshot


def sibling(path: Path, role: str, token: str) -> Path:
    """``/var/www/itflow`` -> ``/var/www/itflow.flowsafe-<role>-<token>`` (same filesystem)."""
    return path.with_name(f"{path.name}.flowsafe-{role}-{token}")


def landing_path(dest: Path) -> Path:
    """Where restic writes before the tree is moved to ``dest`` (same parent folder)."""
    return dest.with_name(f".{dest.name}.landing")


def restore_tree(restic: Restic, snap: Snapshot, root: str, dest: Path) -> None:
    """Restore the snapshot's folder ``root`` (absolute, as backed up) to the new path ``dest``.

    Owners and modes are restic's recorded ones. ``dest`` must not exist.
    """
    if dest.exists():
        raise FlowsafeError(f"{dest} already exists: refusing to restore over it")
    landing = landing_path(dest)
    shutil.rmtree(landing, ignore_errors=True)
    try:
        restic.restore(snap.id, landing, includes=[root])
        restored = landing / root.lstrip("/")
        if not restored.is_dir():
            raise FlowsafeError(f"snapshot {snap.short_id} holds no folder {root}")
        os.rename(restored, dest)
    except OSError as exc:
        raise FlowsafeError(f"cannot restore files to {dest}: {exc.strerror}; free space or "
                            "check the folder") from None
    finally:
        shutil.rmtree(landing, ignore_errors=True)


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


def carry_over(live: Path, new: Path, excludes: list[str]) -> None:
    """Put the live tree's excluded folders (uploads/tmp, uploads/backups) into the new tree."""
    for rel in excludes:
        source = live / rel.strip("/")
        dest = new / rel.strip("/")
        if source.is_dir() and not dest.exists() and dest.parent.is_dir():
            _link_tree(source, dest)


def restore_path(restic: Restic, snap: Snapshot, root: str, rel: str, to_dir: Path,
                 production: list[Path]) -> Path:
    """Restore one file or folder of the site (``rel`` under ``root``) into ``to_dir``."""
    to_dir = to_dir.resolve()
    for live in production:
        if to_dir == live or live in to_dir.parents:
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
    if dest.exists():
        raise ConfigError(f"{dest} already exists: choose another --to folder")
    to_dir.mkdir(parents=True, exist_ok=True)
    landing = to_dir / f".flowsafe-landing-{os.getpid()}"
    try:
        wanted = f"{root.rstrip('/')}/{inner}"
        restic.restore(snap.id, landing, includes=[wanted])
        found = landing / wanted.lstrip("/")
        if not found.exists() and not found.is_symlink():
            raise ConfigError(f"'{inner}' is not in snapshot {snap.short_id}: check the path "
                              "with `restic ls`")
        os.rename(found, dest)
    finally:
        shutil.rmtree(landing, ignore_errors=True)
    return dest
