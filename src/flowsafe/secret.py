"""The ``Secret`` type: a string that never shows itself in repr, str or logs."""

from __future__ import annotations

import os
from pathlib import Path

from flowsafe.errors import ConfigError


class Secret:
    """Wraps a password or key; ``reveal()`` is the only way to read it."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('***')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)

    def __bool__(self) -> bool:
        return bool(self._value)

    @classmethod
    def from_file(cls, path: Path) -> Secret:
        """Read a secret from the first line of a file (trailing newline dropped)."""
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError(f"cannot read the secret file {path}: {exc.strerror}") from None
        return cls(text.splitlines()[0] if text else "")


def read_owner_only(path: Path, what: str, encoding: str = "utf-8") -> str:
    """The stripped text of a file holding a secret, refused if other users can read it."""
    try:
        mode = path.stat().st_mode
        text = path.read_text(encoding=encoding).strip()
    except FileNotFoundError:
        raise ConfigError(f"{what} {path} does not exist") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{what} {path} is not {encoding.upper()} text") from None
    except OSError as exc:
        raise ConfigError(f"cannot read the {what} {path}: {exc.strerror}") from None
    if mode & 0o077:
        raise ConfigError(f"{what} {path} is readable by other users: chmod 600 {path}")
    return text


def private_dirs(path: Path) -> Path:
    """``mkdir -p path``, every folder it creates 0700 (``mkdir(parents=True)`` gives the
    parents it creates the umask's mode, 0755: listable by every user)."""
    missing = []
    here = path
    while not here.exists():
        missing.append(here)
        here = here.parent
    for folder in reversed(missing):
        folder.mkdir(mode=0o700, exist_ok=True)
    return path


def write_private(path: Path, data: str | bytes) -> None:
    """Write ``data`` to ``path`` with mode 0600 from the first byte on (new folders 0700)."""
    private_dirs(path.parent)
    raw = data.encode("utf-8") if isinstance(data, str) else data
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.fchmod(fd, 0o600)
        os.write(fd, raw)
    finally:
        os.close(fd)
