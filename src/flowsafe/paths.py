"""Writing where other users could interfere, safely: target folders checked before use,
temporary files and folders created exclusively and never through someone's symlink.

``refuse_shared_folder`` keeps secrets out of folders every user may list (unless
``--force``). ``check_target`` refuses a folder reached through a symlink another user owns,
inside a world-writable folder without the sticky bit, or owned by another user
below a sticky world-writable one (``/tmp``): there another user could swap a path
under flowsafe, which runs as root. ``write_new`` creates a file exclusively
(``O_CREAT|O_EXCL|O_NOFOLLOW``, mode 0600) under a random name in the target
folder and renames it into place; ``private_folder`` makes a 0700 folder the same way.
"""

from __future__ import annotations

import os
import stat
import tempfile
from collections.abc import Callable
from pathlib import Path

from flowsafe.errors import ConfigError


def check_target(folder: Path, what: str) -> None:
    """Refuse a folder others could redirect (see the module doc); it need not exist yet."""
    me = os.geteuid()
    current = Path("/")
    sticky_above = False
    for part in folder.absolute().parts[1:]:
        current = current / part
        try:
            info = current.lstat()
        except FileNotFoundError:
            return
        trusted = info.st_uid in (0, me)
        if stat.S_ISLNK(info.st_mode):
            if not trusted or sticky_above:
                raise ConfigError(f"{what}: {current} is a symlink owned by another user: "
                                  "choose a folder that only root controls")
            current = current.resolve()
            info = current.stat()
            trusted = info.st_uid in (0, me)
        if sticky_above and not trusted:
            raise ConfigError(f"{what}: {current} belongs to another user inside a "
                              "world-writable folder: choose a folder of your own")
        if info.st_mode & stat.S_IWOTH:
            if not info.st_mode & stat.S_ISVTX:
                raise ConfigError(f"{what}: {current} is writable by every user (and not "
                                  "sticky): choose a private folder")
            sticky_above = True


def world_readable(folder: Path) -> bool:
    """Whether every user may list ``folder`` (read and enter it)."""
    try:
        mode = folder.stat().st_mode
    except FileNotFoundError:
        return False
    return bool(mode & stat.S_IROTH and mode & stat.S_IXOTH)


def refuse_shared_folder(out: Path, what: str, force: bool) -> None:
    """Refuse to write ``what`` (secrets: an export, a recovery sheet) into a folder every
    user may list, unless ``force``: a 0600 file there still shows its name and size, and a
    later ``chmod`` or copy by hand exposes it."""
    folder = out if out.is_dir() else out.parent
    if not force and world_readable(folder):
        raise ConfigError(f"{what}: {folder.absolute()} can be listed by every user: write it "
                          "into a private folder (mode 0700), or pass --force")


def write_new(path: Path, write: Callable[[int], None]) -> None:
    """Create ``path`` (0600, must not exist) through ``write(fd)`` on an exclusively
    created temporary file beside it, renamed into place only when complete."""
    folder = path.parent
    if path.exists() or path.is_symlink():
        raise ConfigError(f"{path} already exists: choose a new file")
    fd, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".partial", dir=folder)
    try:
        os.fchmod(fd, 0o600)
        write(fd)
        os.fsync(fd)
    except BaseException:
        os.close(fd)
        os.unlink(temporary)
        raise
    os.close(fd)
    try:
        os.link(temporary, path)  # fails if something appeared at ``path`` meanwhile
    finally:
        os.unlink(temporary)


def private_folder(parent: Path, prefix: str) -> Path:
    """A new 0700 folder in ``parent``, created exclusively under a random name."""
    return Path(tempfile.mkdtemp(prefix=prefix, dir=parent))
