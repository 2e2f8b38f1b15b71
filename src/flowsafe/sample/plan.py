"""How much a sample of a given scale holds, and the sample's calendar.

Every count is linear in ``scale`` (at least 1). A site's history spans the
three years before ``EPOCH``; night ``n`` of ``nightly_change`` is the day that
starts ``n - 1`` days after it.
"""

from __future__ import annotations

import calendar
import time
from dataclasses import dataclass

EPOCH = calendar.timegm((2026, 8, 1, 0, 0, 0))
HISTORY_SECONDS = 3 * 365 * 86400
DAY_SECONDS = 86400
AGENTS = 3
PORTAL_USERS = 2
BINARY_MIN = 1 << 20
BINARY_MAX = 5 << 20


def count(per_unit: float, scale: float) -> int:
    return max(1, round(per_unit * scale))


def stamp(seconds: float) -> str:
    """A MariaDB DATETIME literal for a Unix time (UTC)."""
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(seconds))


def past(position: float) -> float:
    """The Unix time at ``position`` (0 = oldest, 1 = newest) of the site's history."""
    return EPOCH - HISTORY_SECONDS * (1.0 - position)


def night(day: int, fraction: float) -> float:
    """The Unix time at ``fraction`` of day ``day`` of nightly activity."""
    return EPOCH + (day - 1 + fraction) * DAY_SECONDS


@dataclass(frozen=True)
class Plan:
    """Row and file counts for one scale."""

    clients: int
    contacts: int
    credentials: int
    binary_files: int
    text_files: int
    tickets: int
    replies: int
    documents: int
    logs: int
    app_logs: int
    history: int
    attachments: int
    receipts: int

    @classmethod
    def for_scale(cls, scale: float) -> Plan:
        if scale <= 0:
            raise ValueError(f"scale must be positive, not {scale}")
        return cls(
            clients=count(8, scale),
            contacts=count(32, scale),
            credentials=count(32, scale),
            binary_files=count(3.5, scale),
            text_files=count(8, scale),
            tickets=count(150, scale),
            replies=count(750, scale),
            documents=count(40, scale),
            logs=count(3000, scale),
            app_logs=count(800, scale),
            history=count(1500, scale),
            attachments=count(15, scale),
            receipts=count(3, scale),
        )
