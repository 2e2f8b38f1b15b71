"""``version.txt`` of an ITFlow archive: its ``Key: value`` lines and checksums, read and written.

Every release since 25.05 writes ``ITFlow Backup Metadata``, a dash line, ``Key: value``
lines, and (25.11 and later) ``Checksums (SHA256):`` followed by ``  <entry>: <hex>``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field

TITLE = "ITFlow Backup Metadata"
RULE = "-" * 29
CHECKSUMS = "Checksums (SHA256):"
UNKNOWN = "Unknown"
_HEX = re.compile(r"[0-9a-f]{64}")


@dataclass(frozen=True)
class VersionTxt:
    """The fields in file order, and each entry's recorded SHA-256 (as written)."""

    fields: dict[str, str] = field(default_factory=dict)
    checksums: dict[str, str] = field(default_factory=dict)

    def value(self, key: str) -> str | None:
        """A field's value; ``None`` when absent, empty or ``Unknown``/``N/A``."""
        found = self.fields.get(key, "").strip()
        return None if found in ("", UNKNOWN, "N/A") else found

    @property
    def backup_type(self) -> str | None:
        return self.value("Backup Type")

    def checksum(self, entry: str) -> str | None:
        """The recorded digest of ``entry`` if it is one (not ``N/A``), lower case."""
        recorded = self.checksums.get(entry, "").strip().lower()
        return recorded if _HEX.fullmatch(recorded) else None


def parse(text: str) -> VersionTxt:
    """Read version.txt; lines that are neither fields nor checksums are ignored."""
    fields: dict[str, str] = {}
    checksums: dict[str, str] = {}
    in_checksums = False
    for line in text.splitlines():
        if line.strip() == CHECKSUMS:
            in_checksums = True
            continue
        key, colon, value = line.partition(":")
        if not colon:
            continue
        if in_checksums and line.startswith("  "):
            checksums[key.strip()] = value.strip()
        else:
            in_checksums = False
            fields.setdefault(key.strip(), value.strip())
    return VersionTxt(fields, checksums)


def render(fields: Sequence[tuple[str, str]], checksums: Sequence[tuple[str, str]]) -> str:
    """version.txt as ITFlow 26.08 writes it."""
    lines = [TITLE, RULE, *(f"{key}: {value}" for key, value in fields), CHECKSUMS]
    lines += [f"  {entry}: {digest}" for entry, digest in checksums]
    return "\n".join(lines) + "\n"
