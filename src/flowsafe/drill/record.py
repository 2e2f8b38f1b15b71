"""Drill results kept in the repository, so every machine attached to it sees them.

Each drill stores its JSON report as a one-file restic snapshot tagged
``flowsafe-drill``, ``site:<name>``, ``drilled:<snapshot>`` and ``result:ok|failed``.
The tag is not ``flowsafe``, so backups' listing and retention never see them.
"""

from __future__ import annotations

import json
import socket
from dataclasses import dataclass
from datetime import datetime

from flowsafe.drill.report import DrillReport
from flowsafe.restic import Restic

DRILL_TAG = "flowsafe-drill"


@dataclass(frozen=True)
class DrillRecord:
    """One recorded drill, from its tags."""

    time: datetime
    site: str
    snapshot: str
    ok: bool


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
    tags = [DRILL_TAG, f"site:{report.site}", f"drilled:{report.snapshot_id[:8]}",
            f"result:{'ok' if report.ok else 'failed'}"]
    return restic.backup_bytes(json.dumps(body, indent=2).encode(),
                               filename=f"flowsafe-drill-{report.site}.json", tags=tags,
                               host=socket.gethostname())


def history(restic: Restic, site: str) -> list[DrillRecord]:
    """A site's recorded drills, oldest first."""
    return [DrillRecord(s.time, site, s.tag_value("drilled") or "?",
                        s.tag_value("result") == "ok")
            for s in restic.snapshots([DRILL_TAG, f"site:{site}"])]
