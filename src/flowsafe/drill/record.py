"""Drill results kept in the repository, so every machine attached to it sees them.

Each drill stores its JSON report as a one-file restic snapshot tagged
``flowsafe-drill``, ``site:<name>``, ``drilled:<snapshot>``, ``result:ok|failed`` and
``credentials:ok|failed|skipped`` (whether the stored credentials decrypted with the key).
The tag is not ``flowsafe``, so backups' listing and retention never see them.
"""

from __future__ import annotations

import json
import socket
from dataclasses import dataclass
from datetime import datetime

from flowsafe.drill.report import DrillReport
from flowsafe.restic import Restic, Snapshot

DRILL_TAG = "flowsafe-drill"
CREDENTIALS_CHECK = "credentials decrypt"


@dataclass(frozen=True)
class DrillRecord:
    """One recorded drill, from its tags."""

    time: datetime
    site: str
    snapshot: str
    ok: bool
    credentials: str | None = None  # the credentials check's result; None in older records
    record_id: str = ""


def save(restic: Restic, report: DrillReport) -> str:
    """Store the report in the repository; returns the record's snapshot id."""
    body = {
        "site": report.site,
        "snapshot": report.snapshot_id,
        "started": report.started.isoformat(),
        "seconds": round(report.seconds, 2),
        "ok": report.ok,
        "checks": [{"name": c.name, "result": c.result, "detail": c.detail,
                    "seconds": round(c.seconds, 2)} for c in report.checks],
    }
    credentials = next((c.result for c in report.checks if c.name == CREDENTIALS_CHECK),
                       "skipped")
    tags = [DRILL_TAG, f"site:{report.site}", f"drilled:{report.snapshot_id[:8]}",
            f"result:{'ok' if report.ok else 'failed'}", f"credentials:{credentials}"]
    return restic.backup_bytes(json.dumps(body, indent=2).encode(),
                               filename=f"flowsafe-drill-{report.site}.json", tags=tags,
                               host=socket.gethostname())


def from_snapshot(snap: Snapshot, site: str) -> DrillRecord:
    """A drill record from its tags."""
    return DrillRecord(snap.time, site, snap.tag_value("drilled") or "?",
                       snap.tag_value("result") == "ok", snap.tag_value("credentials"), snap.id)


def history(restic: Restic, site: str) -> list[DrillRecord]:
    """A site's recorded drills, oldest first."""
    return [from_snapshot(s, site) for s in restic.snapshots([DRILL_TAG, f"site:{site}"])]


def body(restic: Restic, drill: DrillRecord) -> dict[str, object]:
    """The stored report of a recorded drill (its checks), as saved."""
    data = json.loads(restic.dump(drill.record_id, f"/flowsafe-drill-{drill.site}.json"))
    return data if isinstance(data, dict) else {}
