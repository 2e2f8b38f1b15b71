"""This machine's record of the last attempt of each action per site (for ``status``).

Snapshots in the repository say what succeeded; only this record knows what
failed, so ``status`` can say "last backup failed: <why>".
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from flowsafe.secret import write_private


def _path(state_dir: Path, site: str) -> Path:
    return state_dir / "runs" / f"{site}.json"


def read(state_dir: Path, site: str) -> dict[str, Any]:
    """All recorded actions of a site: ``{action: {time, ok, reason, snapshot, error}}``."""
    try:
        data = json.loads(_path(state_dir, site).read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def record(
    state_dir: Path, site: str, action: str, *, ok: bool, reason: str = "",
    snapshot: str | None = None, error: str | None = None,
) -> None:
    """Remember the outcome of ``action`` (``backup``, ``restore``, ...) for a site."""
    data = read(state_dir, site)
    data[action] = {
        "time": datetime.now(UTC).isoformat(timespec="seconds"),
        "ok": ok,
        "reason": reason,
        "snapshot": snapshot,
        "error": error,
    }
    write_private(_path(state_dir, site), json.dumps(data, indent=2) + "\n")
