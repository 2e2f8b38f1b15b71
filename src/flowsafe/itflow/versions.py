"""Which ITFlow code a folder holds: app version, git commit, expected schema version.

Also owns version arithmetic: ITFlow versions (``26.08.2``, ``2.6.7``) are
compared numerically part by part, never as strings, and missing parts count
as zero (``2.6`` == ``2.6.0``). Nothing here runs PHP or git: the files are read
directly, and a file that is missing gives ``None``.
"""

from __future__ import annotations

import re
from pathlib import Path

from flowsafe.errors import ConfigError
from flowsafe.itflow.config_php import php_constants, read_php

APP_VERSION_FILE = Path("includes/app_version.php")
DATABASE_VERSION_FILE = Path("includes/database_version.php")
DATABASE_UPDATES_DIR = Path("admin/database_updates")

_VERSION = re.compile(r"\d+(?:\.\d+)*")
_OBJECT_ID = re.compile(r"[0-9a-f]{40}(?:[0-9a-f]{24})?")
_MAX_SYMBOLIC_DEPTH = 5


def parse_version(text: str) -> tuple[int, ...]:
    """``"2.10.0"`` -> ``(2, 10, 0)``; ``ConfigError`` for anything but dotted numbers."""
    if not _VERSION.fullmatch(text.strip()):
        raise ConfigError(
            f"{text!r} is not a version number; expected dotted numbers such as 2.6.7"
        )
    return tuple(int(part) for part in text.strip().split("."))


def compare_versions(a: str, b: str) -> int:
    """-1, 0 or 1 as ``a`` is older than, the same as or newer than ``b``."""
    left, right = parse_version(a), parse_version(b)
    width = max(len(left), len(right))
    left += (0,) * (width - len(left))
    right += (0,) * (width - len(right))
    return (left > right) - (left < right)


def _literal(text: str, relative: Path, name: str) -> str | None:
    value = php_constants(text, str(relative)).get(name)
    return value if isinstance(value, str) else None


def _constant(site: Path, relative: Path, name: str) -> str | None:
    """A ``define(name, 'literal')`` from a PHP file of the site; ``None`` if absent."""
    try:
        text = read_php(site / relative, "ITFlow file")
    except FileNotFoundError:
        return None
    return _literal(text, relative, name)


def app_version(site: Path) -> str | None:
    """``APP_VERSION`` from ``includes/app_version.php``."""
    return _constant(site, APP_VERSION_FILE, "APP_VERSION")


def app_version_in(text: str) -> str | None:
    """``APP_VERSION`` from the text of an ``includes/app_version.php`` (e.g. from git)."""
    return _literal(text, APP_VERSION_FILE, "APP_VERSION")


def expected_schema_in(database_version_php: str, update_names: list[str]) -> str | None:
    """``LATEST_DATABASE_VERSION`` from the text of ``includes/database_version.php``: its
    literal (older releases), else the highest of ``update_names`` (the file names of
    ``admin/database_updates/``, without ``.php``)."""
    literal = _literal(database_version_php, DATABASE_VERSION_FILE, "LATEST_DATABASE_VERSION")
    if literal is not None:
        return literal
    versions = [name for name in update_names if _VERSION.fullmatch(name)]
    return max(versions, key=parse_version, default=None)


def expected_schema_version(site: Path) -> str | None:
    """The schema version the code expects (``LATEST_DATABASE_VERSION``).

    Older releases define it as a literal; newer ones compute it as the highest
    ``admin/database_updates/<version>.php`` file name, which is done here too.
    """
    if not (site / DATABASE_VERSION_FILE).is_file():
        return None
    text = read_php(site / DATABASE_VERSION_FILE, "ITFlow file")
    names = [p.stem for p in (site / DATABASE_UPDATES_DIR).glob("*.php") if p.is_file()]
    return expected_schema_in(text, names)


def _git_dir(site: Path) -> Path | None:
    """``.git``, or the folder a ``.git`` file points to (``gitdir: …``)."""
    dot_git = site / ".git"
    if dot_git.is_dir():
        return dot_git
    text = _read_text(dot_git)
    if text is None or not text.startswith("gitdir:"):
        return None
    return (site / text.removeprefix("gitdir:").strip()).resolve()


def _read_text(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8", errors="replace").strip()
    except OSError:
        return None


def _resolve_ref(git_dirs: list[Path], ref: str) -> str | None:
    """The object id a ref names: the loose ref file first, then ``packed-refs``."""
    for _ in range(_MAX_SYMBOLIC_DEPTH):
        if not ref.startswith("refs/") or ".." in ref.split("/"):
            return None
        loose = next((t for d in git_dirs if (t := _read_text(d / ref)) is not None), None)
        if loose is None:
            return _packed_ref(git_dirs, ref)
        if not loose.startswith("ref:"):
            return loose if _OBJECT_ID.fullmatch(loose) else None
        ref = loose.removeprefix("ref:").strip()
    return None


def _packed_ref(git_dirs: list[Path], ref: str) -> str | None:
    for git_dir in git_dirs:
        for line in (_read_text(git_dir / "packed-refs") or "").splitlines():
            object_id, _, name = line.partition(" ")
            if name.strip() == ref and _OBJECT_ID.fullmatch(object_id):
                return object_id
    return None


def git_commit(site: Path) -> str | None:
    """The commit checked out in ``site`` (branch or detached HEAD), read without git."""
    git_dir = _git_dir(site)
    if git_dir is None:
        return None
    head = _read_text(git_dir / "HEAD")
    if head is None:
        return None
    if not head.startswith("ref:"):
        return head if _OBJECT_ID.fullmatch(head) else None
    git_dirs = [git_dir]
    common = _read_text(git_dir / "commondir")
    if common is not None:
        git_dirs.append((git_dir / common).resolve())
    return _resolve_ref(git_dirs, head.removeprefix("ref:").strip())
