"""Reading a candidate master key from where the admin keeps it (a 0600 key file)."""

from __future__ import annotations

from pathlib import Path

from flowsafe.errors import ConfigError
from flowsafe.secret import Secret, read_owner_only

KEY_LENGTH = 16


def read_key_file(path: Path) -> Secret:
    """The master key in ``path``: 16 ASCII characters, file readable by its owner only."""
    text = read_owner_only(path, "key file", "ascii")
    if len(text) != KEY_LENGTH:
        raise ConfigError(f"key file {path} holds {len(text)} characters; an ITFlow master key "
                          f"has {KEY_LENGTH}")
    return Secret(text)
