"""Reading a candidate master key from where the admin keeps it (a 0600 key file)."""

from __future__ import annotations

from pathlib import Path

from flowsafe.errors import ConfigError
from flowsafe.secret import Secret

KEY_LENGTH = 16


def read_key_file(path: Path) -> Secret:
    """The master key in ``path``: 16 ASCII characters, file readable by its owner only."""
    try:
        mode = path.stat().st_mode
        text = path.read_text(encoding="ascii").strip()
    except FileNotFoundError:
        raise ConfigError(f"key file {path} does not exist") from None
    except UnicodeDecodeError:
        raise ConfigError(f"key file {path} does not hold an ASCII master key") from None
    if mode & 0o077:
        raise ConfigError(f"key file {path} is readable by other users: chmod 600 {path}")
    if len(text) != KEY_LENGTH:
        raise ConfigError(f"key file {path} holds {len(text)} characters; an ITFlow master key "
                          f"has {KEY_LENGTH}")
    return Secret(text)
