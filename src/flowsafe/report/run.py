"""``flowsafe report``: gather each site's month from its repositories, write HTML or PDF."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from flowsafe.config import Config
from flowsafe.errors import ConfigError
from flowsafe.report import html
from flowsafe.report.model import Month, SiteReport, build
from flowsafe.status import collect_with_inventories


@dataclass(frozen=True)
class ReportResult:
    path: Path
    month: str
    sites: list[str]
    backups: int
    drills: int
    empty_sites: list[str]  # sites without a backup in the month


def parse_month(value: str | None) -> Month:
    """``YYYY-MM`` (default: this month, UTC)."""
    if value is None:
        now = datetime.now(UTC)
        return Month(now.year, now.month)
    found = re.fullmatch(r"(\d{4})-(\d{2})", value)
    if not found or not 1 <= int(found.group(2)) <= 12:
        raise ConfigError(f"--month {value!r} is not a month: use YYYY-MM, e.g. 2026-11")
    return Month(int(found.group(1)), int(found.group(2)))


def run_report(config: Config, site_name: str | None, month: str | None, out: Path,
               all_sites: bool = False) -> ReportResult:
    """Write the report of one site (or every site) for one month to ``out``."""
    suffix = out.suffix.lower()
    if suffix not in (".html", ".pdf"):
        raise ConfigError(f"--out {out}: name an .html or a .pdf file")
    period = parse_month(month)
    statuses, inventories = collect_with_inventories(config, site_name, all_sites)
    reports: list[SiteReport] = [build(config, s, inventories, period) for s in statuses]
    if not reports:
        raise ConfigError("no site to report on: pass --site NAME or --all")
    out.parent.mkdir(parents=True, exist_ok=True)
    if suffix == ".html":
        out.write_text(html.render(reports), encoding="utf-8")
    else:
        from flowsafe.report import pdf  # reportlab is heavy: loaded for a PDF only

        pdf.write(out, reports)
    return ReportResult(out, str(period), [r.site for r in reports],
                        sum(len(r.backups) for r in reports),
                        sum(len(r.drills) for r in reports),
                        [r.site for r in reports if not r.backups])
