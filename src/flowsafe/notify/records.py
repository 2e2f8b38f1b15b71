"""Run records: what each backup and copy did, kept in the site's repository so that every
machine attached to it (the fleet view, the report) sees durations, sizes and failures.

A record is a one-file restic snapshot tagged ``flowsafe-run``, ``site:<name>``,
``command:<command>``, ``result:ok|failed``, ``seconds:<duration>``, ``added:<bytes>``,
``size:<repository bytes>`` and, where it applies, ``snapshot:<id>`` and ``to:<repository>``:
listings read them from the tags alone. The body (the same plus the error line) is
there for ``restic dump``. The tag is not ``flowsafe``: listings and retention of backups
never see these records; ``flowsafe prune`` forgets those older than ``KEEP_WITHIN``.
"""

from __future__ import annotations

import json
import socket
from dataclasses import dataclass
from datetime import datetime

from flowsafe.restic import Restic, Snapshot

RUN_TAG = "flowsafe-run"
NOTIFY_FAILURE = "notify-failure"  # the action under which runs.py keeps the last one
KEEP_WITHIN = "400d"  # run records older than this are forgotten by ``flowsafe prune``


@dataclass(frozen=True)
class RunRecord:
    """One recorded run, from its tags."""

    time: datetime
    site: str
    command: str
    ok: bool
    seconds: float | None
    bytes_added: int | None
    repository_bytes: int | None
    snapshot: str | None
    to: str | None
    host: str
    record_id: str


def _number(snap: Snapshot, key: str) -> float | None:
    value = snap.tag_value(key)
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


def from_snapshot(snap: Snapshot, site: str) -> RunRecord:
    """A run record from its tags."""
    added, size = _number(snap, "added"), _number(snap, "size")
    return RunRecord(
        time=snap.time, site=site, command=snap.tag_value("command") or "?",
        ok=snap.tag_value("result") == "ok", seconds=_number(snap, "seconds"),
        bytes_added=int(added) if added is not None else None,
        repository_bytes=int(size) if size is not None else None,
        snapshot=snap.tag_value("snapshot"), to=snap.tag_value("to"), host=snap.hostname,
        record_id=snap.id,
    )


def save(restic: Restic, *, site: str, command: str, ok: bool, seconds: float,
         bytes_added: int | None, repository_bytes: int | None, snapshot: str | None,
         to: str | None, error: str | None) -> str:
    """Store one run record; returns its (short) id."""
    tags = [RUN_TAG, f"site:{site}", f"command:{command}", f"result:{'ok' if ok else 'failed'}",
            f"seconds:{seconds:.1f}"]
    if bytes_added is not None:
        tags.append(f"added:{bytes_added}")
    if repository_bytes is not None:
        tags.append(f"size:{repository_bytes}")
    if snapshot:
        tags.append(f"snapshot:{snapshot[:8]}")
    if to:
        tags.append(f"to:{to}")
    body = {"site": site, "command": command, "ok": ok, "seconds": round(seconds, 1),
            "bytes_added": bytes_added, "repository_bytes": repository_bytes,
            "snapshot": snapshot, "to": to, "error": error}
    return restic.backup_bytes(json.dumps(body, indent=2).encode(),
                               filename=f"flowsafe-run-{site}.json", tags=tags,
                               host=socket.gethostname(), full_id=False)


def error_of(restic: Restic, record: RunRecord) -> str | None:
    """The error line a failed run recorded."""
    data = json.loads(restic.dump(record.record_id, f"/flowsafe-run-{record.site}.json"))
    return str(data.get("error") or "") or None if isinstance(data, dict) else None
