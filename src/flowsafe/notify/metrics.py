"""Prometheus metrics in node-exporter's textfile format, written atomically.

Names follow Prometheus conventions: a ``flowsafe_`` prefix, base units in the suffix
(``_seconds``, ``_bytes``, ``_timestamp_seconds``), gauges only, labels ``site`` and
``repository``. The file is written beside its final path and renamed over it, so the
node exporter never reads half a file. It holds no secret (mode 0644, for the exporter).
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterable
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from flowsafe.status import SiteStatus

HELP = {
    "flowsafe_site_ok": "1 when the site's status is not stale (what flowsafe status exits 0 on).",
    "flowsafe_backup_last_success_timestamp_seconds": "Time of the site's newest backup.",
    "flowsafe_backup_last_attempt_timestamp_seconds":
        "Time of the last backup attempt on this machine.",
    "flowsafe_backup_last_attempt_success": "1 when the last backup attempt here succeeded.",
    "flowsafe_backup_duration_seconds": "Duration of the site's last successful backup.",
    "flowsafe_backup_added_bytes": "Bytes the last successful backup added to the repository.",
    "flowsafe_snapshots": "Backups of the site in the repository.",
    "flowsafe_repository_size_bytes": "Bytes the repository stores (after dedup, compression).",
    "flowsafe_repository_up": "1 when the repository could be listed.",
    "flowsafe_drill_last_timestamp_seconds": "Time of the site's last drill.",
    "flowsafe_drill_last_success": "1 when the site's last drill passed every check.",
    "flowsafe_drill_last_success_timestamp_seconds": "Time of the last drill that passed.",
    "flowsafe_credentials_last_decrypted_timestamp_seconds":
        "Time of the last drill in which every stored credential decrypted.",
    "flowsafe_key_escrowed": "1 when the master key is escrowed in the repository.",
    "flowsafe_copy_last_attempt_timestamp_seconds": "Time of the last copy attempt here.",
    "flowsafe_copy_last_attempt_success": "1 when the last copy attempt here succeeded.",
    "flowsafe_notification_last_failure_timestamp_seconds":
        "Time of the last notification or ping that could not be delivered.",
}


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _stamp(value: datetime | str | None) -> float | None:
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value.timestamp() if value is not None else None


def _samples(statuses: Iterable[SiteStatus]
             ) -> dict[str, list[tuple[dict[str, str], float]]]:
    found: dict[str, list[tuple[dict[str, str], float]]] = {name: [] for name in HELP}

    def add(name: str, labels: dict[str, str], value: float | bool | None) -> None:
        if value is not None and (labels, float(value)) not in found[name]:
            found[name].append((labels, float(value)))

    for row in statuses:
        site = {"site": row.site}
        add("flowsafe_site_ok", site, row.ok)
        add("flowsafe_backup_last_success_timestamp_seconds", site, _stamp(row.last_backup))
        attempt = row.last_attempt or {}
        add("flowsafe_backup_last_attempt_timestamp_seconds", site, _stamp(attempt.get("time")))
        add("flowsafe_backup_last_attempt_success", site,
            attempt.get("ok") if attempt else None)
        add("flowsafe_backup_duration_seconds", site, row.last_backup_seconds)
        add("flowsafe_backup_added_bytes", site, row.last_backup_added)
        add("flowsafe_drill_last_timestamp_seconds", site, _stamp(row.last_drill))
        add("flowsafe_drill_last_success", site, row.last_drill_ok)
        add("flowsafe_drill_last_success_timestamp_seconds", site, _stamp(row.last_verified))
        add("flowsafe_credentials_last_decrypted_timestamp_seconds", site,
            _stamp(row.credentials_decrypted))
        add("flowsafe_key_escrowed", site, row.escrowed)
        failure = row.last_notification_failure or {}
        add("flowsafe_notification_last_failure_timestamp_seconds", site,
            _stamp(failure.get("time")))
        for repo in row.repositories:
            both = {"site": row.site, "repository": repo.name}
            add("flowsafe_repository_up", {"repository": repo.name}, repo.error is None)
            add("flowsafe_repository_size_bytes", {"repository": repo.name}, repo.bytes)
            if repo.error is None:
                add("flowsafe_snapshots", both, repo.snapshots)
            copy = repo.last_copy or {}
            add("flowsafe_copy_last_attempt_timestamp_seconds", both, _stamp(copy.get("time")))
            add("flowsafe_copy_last_attempt_success", both, copy.get("ok") if copy else None)
    return found


def render(statuses: Iterable[SiteStatus]) -> str:
    """The metrics as Prometheus text exposition format."""
    lines = []
    for name, samples in _samples(statuses).items():
        if not samples:
            continue
        lines += [f"# HELP {name} {HELP[name]}", f"# TYPE {name} gauge"]
        for labels, value in samples:
            shown = ",".join(f'{k}="{_escape(v)}"' for k, v in labels.items())
            lines.append(f"{name}{{{shown}}} {value:.15g}")
    return "\n".join(lines) + "\n"


def write(path: Path, statuses: Iterable[SiteStatus]) -> None:
    """Replace ``path`` atomically with the metrics (a reader sees the old or the new file)."""
    text = render(statuses)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(temp, 0o644)
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise
