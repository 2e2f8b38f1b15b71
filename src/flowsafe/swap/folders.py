"""The folder move: the live site folder to a kept (*sink*) path and a built (*source*)
folder to live, by two renames in one parent folder.

Each folder is known by its identity (device and inode, recorded when the swap is
journaled), so the state comes from what is where, never from a missing path:
``before``, ``half`` (between the two renames) or ``after``; anything else is
``InconsistentError`` and nothing moves.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict

from flowsafe.faults import checkpoint
from flowsafe.swap.tables import InconsistentError

State = Literal["before", "half", "after"]
Identity = tuple[int, int]


def identity(path: Path) -> Identity | None:
    """(device, inode) of a folder (not following a symlink), or None if nothing is there."""
    try:
        info = path.lstat()
    except FileNotFoundError:
        return None
    return info.st_dev, info.st_ino


class DirSwap(BaseModel):
    """live -> sink, source -> live; ``old`` and ``new`` are the two folders' identities."""

    model_config = ConfigDict(frozen=True)

    live: Path
    source: Path
    sink: Path
    old: Identity
    new: Identity

    def inverse(self) -> DirSwap:
        return DirSwap(live=self.live, source=self.sink, sink=self.source, old=self.new,
                       new=self.old)

    def state(self, source_optional: bool = False) -> State:
        """Where the swap stands; with ``source_optional`` (putting it back) the built
        folder may be gone, as when someone removed it by hand: it is scratch."""
        live, source, sink = identity(self.live), identity(self.source), identity(self.sink)
        built = (self.new, None) if source_optional else (self.new,)
        if live == self.old and source in built and sink is None:
            return "before"
        if live is None and sink == self.old and source in built:
            return "half"
        if live == self.new and sink == self.old and source is None:
            return "after"
        raise InconsistentError(
            f"the site folders are not as the restore journal says: {self.live} is "
            f"{_what(live, self)}, {self.source} is {_what(source, self)}, {self.sink} is "
            f"{_what(sink, self)}; nothing was moved. Check them by hand, then run "
            "`flowsafe undo --forget` to discard the journal")

    def apply(self) -> None:
        state = self.state()
        if state == "before":
            os.rename(self.live, self.sink)
            checkpoint("swap-files-half")
            state = "half"
        if state == "half":
            os.rename(self.source, self.live)

    def revert(self) -> None:
        """Put a half or fully applied swap back (the built folder need not be there)."""
        state = self.state(source_optional=True)
        if state == "after":
            os.rename(self.live, self.source)
            state = "half"
        if state == "half":
            os.rename(self.sink, self.live)


def _what(found: Identity | None, swap: DirSwap) -> str:
    if found is None:
        return "missing"
    if found == swap.old:
        return "the site as it was before the restore"
    if found == swap.new:
        return "the restored site"
    return "another folder"
