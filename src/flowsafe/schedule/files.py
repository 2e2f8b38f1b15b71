"""The files a schedule is made of: where they go (below ``FLOWSAFE_SCHEDULE_ROOT``, else
``/``), the marker line that says flowsafe wrote them, and replacing or removing only
files that carry it."""

from __future__ import annotations

import os
from pathlib import Path

from flowsafe.errors import ConfigError

ROOT_ENV = "FLOWSAFE_SCHEDULE_ROOT"
MARKER = "# Written by `flowsafe schedule install`"
LOG_DIR = Path("/var/log/flowsafe")
LOG_FILE = LOG_DIR / "flowsafe.log"


def root() -> Path:
    return Path(os.environ.get(ROOT_ENV) or "/")


def live() -> bool:
    """Whether the files are the running system's (no test root)."""
    return root() == Path("/")


def here(path: Path) -> Path:
    """``path`` (as the system sees it) below the root."""
    return root() / path.relative_to("/")


def header(config: Path, extra: str = "") -> str:
    lines = [f"{MARKER} for {config};", "# `flowsafe schedule remove` removes it; edits are "
             "lost at the next install."]
    return "\n".join(lines + ([extra] if extra else [])) + "\n"


def ours(path: Path) -> bool:
    try:
        with path.open(encoding="utf-8", errors="replace") as file:
            return file.readline().startswith(MARKER)
    except OSError:
        return False


def write_ours(path: Path, text: str, mode: int = 0o644) -> None:
    """Write (or replace) a file of ours; refuse to overwrite someone else's."""
    if path.exists() and not ours(path):
        raise ConfigError(f"{path} exists and was not written by flowsafe: move it away, "
                          "then install the schedule again")
    path.parent.mkdir(parents=True, exist_ok=True)
    pending = path.with_name(f".{path.name}.flowsafe-new")
    pending.write_text(text, encoding="utf-8")
    pending.chmod(mode)
    os.replace(pending, path)


def remove_ours(paths: list[Path]) -> list[Path]:
    """Remove those of ``paths`` that flowsafe wrote; the removed ones."""
    removed = [path for path in paths if ours(path)]
    for path in removed:
        path.unlink()
    return removed
