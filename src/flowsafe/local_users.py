"""Local accounts that flowsafe's children run as (and that own restored trees): found by
name or uid, with their groups and a clean environment (nothing of root's environment
reaches an unprivileged child)."""

from __future__ import annotations

import grp
import os
import pwd
import stat
from dataclasses import dataclass
from pathlib import Path

UNPRIVILEGED = ("www-data", "nobody")  # who runs restored or live PHP, first that exists
SAFE_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


@dataclass(frozen=True)
class Account:
    """A local user: its ids, supplementary groups and home."""

    name: str
    uid: int
    gid: int
    groups: tuple[int, ...]
    home: str

    @classmethod
    def _from(cls, entry: pwd.struct_passwd) -> Account:
        groups = tuple(os.getgrouplist(entry.pw_name, entry.pw_gid))
        return cls(entry.pw_name, entry.pw_uid, entry.pw_gid, groups, entry.pw_dir)

    @classmethod
    def named(cls, name: str) -> Account | None:
        """The account called ``name``, or None when there is none."""
        try:
            return cls._from(pwd.getpwnam(name))
        except KeyError:
            return None

    @classmethod
    def of_uid(cls, uid: int) -> Account | None:
        """The account with this uid, or None when the uid has no account."""
        try:
            return cls._from(pwd.getpwuid(uid))
        except KeyError:
            return None

    @property
    def group_name(self) -> str:
        try:
            return grp.getgrgid(self.gid).gr_name
        except KeyError:
            return str(self.gid)

    def environment(self) -> dict[str, str]:
        """A minimal environment for a child running as this account."""
        env = {"PATH": SAFE_PATH, "HOME": self.home, "USER": self.name, "LOGNAME": self.name,
               "LANG": "C.UTF-8"}
        if "TZ" in os.environ:
            env["TZ"] = os.environ["TZ"]
        return env

    def can_enter(self, folder: Path) -> bool:
        """Whether this account may traverse ``folder`` and every folder above it."""
        return all(self._allowed(f, 0o1) for f in (folder.absolute(), *folder.absolute().parents))

    def can_reach(self, path: str) -> bool:
        """Whether this account may traverse every folder above ``path`` and write to it
        (what connecting to a Unix socket needs), judged from owners and modes."""
        target = Path(path).absolute()
        return self.can_enter(target.parent) and self._allowed(target, 0o2)

    def _allowed(self, path: Path, bit: int) -> bool:
        try:
            info = path.stat()
        except OSError:
            return False
        if self.uid == 0:
            return True
        if info.st_uid == self.uid:
            return bool(info.st_mode & (bit << 6))
        if info.st_gid in self.groups:
            return bool(info.st_mode & (bit << 3))
        return bool(info.st_mode & bit)


def unprivileged() -> Account | None:
    """``www-data``, else ``nobody``: the account that runs PHP for flowsafe."""
    for name in UNPRIVILEGED:
        found = Account.named(name)
        if found is not None:
            return found
    return None


def chown_tree(root: Path, uid: int, gid: int) -> int:
    """Give ``root`` and everything below it (symlinks themselves, never followed) to
    ``uid``:``gid``, keeping each entry's mode (a chown clears set-id bits); returns how
    many entries changed owner."""
    changed = _give(str(root), uid, gid)
    for folder, dirs, files in os.walk(root):
        for name in dirs + files:
            changed += _give(os.path.join(folder, name), uid, gid)
    return changed


def _give(path: str, uid: int, gid: int) -> int:
    info = os.lstat(path)
    if (info.st_uid, info.st_gid) == (uid, gid):
        return 0
    os.lchown(path, uid, gid)
    if not stat.S_ISLNK(info.st_mode) and info.st_mode & (stat.S_ISUID | stat.S_ISGID):
        os.chmod(path, stat.S_IMODE(info.st_mode))
    return 1
