"""Walks a site tree the way the backup sees it (exclusions applied) and counts it."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class TreeStats:
    """Files and bytes in the tree, and the part of them under ``uploads/``."""

    count: int
    bytes: int
    uploads_count: int
    uploads_bytes: int


def scan_tree(root: Path, excludes: list[str]) -> TreeStats:
    """Count regular files and symlinks below ``root``, skipping site-relative ``excludes``."""
    skip = {os.path.normpath(root / rel.strip("/")) for rel in excludes}
    uploads = os.path.join(os.path.normpath(root), "uploads") + os.sep
    count = total = up_count = up_bytes = 0
    stack = [os.path.normpath(root)]
    while stack:
        folder = stack.pop()
        with os.scandir(folder) as entries:
            for entry in entries:
                if entry.path in skip:
                    continue
                if entry.is_dir(follow_symlinks=False):
                    stack.append(entry.path)
                    continue
                size = entry.stat(follow_symlinks=False).st_size
                count += 1
                total += size
                if entry.path.startswith(uploads):
                    up_count += 1
                    up_bytes += size
    return TreeStats(count, total, up_count, up_bytes)
