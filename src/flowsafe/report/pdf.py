"""The report as PDF (reportlab): the same words as the HTML (``text.py``) and the same
charts, drawn with reportlab's graphics."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from reportlab.graphics.shapes import Drawing, PolyLine, Rect, String
from reportlab.lib import colors
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import getSampleStyleSheet
from reportlab.lib.units import mm
from reportlab.platypus import PageBreak, Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

from flowsafe.render import size
from flowsafe.report import text
from flowsafe.report.model import DrillRow, Month, SiteReport

STYLES = getSampleStyleSheet()
WIDTH = 170 * mm
GRID = TableStyle([("FONTSIZE", (0, 0), (-1, -1), 8),
                   ("LINEBELOW", (0, 0), (-1, -1), 0.25, colors.lightgrey),
                   ("VALIGN", (0, 0), (-1, -1), "TOP")])


def _para(line: str, style: str = "BodyText") -> Paragraph:
    return Paragraph(line.replace("&", "&amp;").replace("<", "&lt;"), STYLES[style])


def _table(header: Sequence[str] | None, rows: Sequence[Sequence[str]]) -> Table:
    cells = [[_para(c) for c in row] for row in ([header] if header else []) + list(rows)]
    table = Table(cells, colWidths=[WIDTH / len(cells[0])] * len(cells[0]))
    table.setStyle(GRID)
    return table


def _x(month: Month, moment: datetime, width: float) -> float:
    span = (month.end - month.start).total_seconds()
    return 30 + (width - 40) * (moment - month.start).total_seconds() / span


def _chart(month: Month, points: Sequence[tuple[datetime, float]],
           label: Callable[[float], str]) -> Drawing:
    width, height = WIDTH, 40 * mm
    drawing = Drawing(width, height)
    drawing.add(Rect(30, 10, width - 40, height - 20, fillColor=colors.whitesmoke,
                     strokeColor=colors.lightgrey))
    if not points:
        drawing.add(String(width / 2, height / 2, "no data in this month", fontSize=8,
                           textAnchor="middle", fillColor=colors.grey))
        return drawing
    top = max(v for _, v in points) or 1.0
    coords: list[float] = []
    for moment, value in points:
        coords += [_x(month, moment, width), 10 + (height - 24) * value / top]
    drawing.add(PolyLine(coords, strokeColor=colors.HexColor("#1565c0"), strokeWidth=1.5))
    drawing.add(String(28, height - 14, label(top), fontSize=7, textAnchor="end"))
    return drawing


def _strip(month: Month, drills: Sequence[DrillRow]) -> Drawing:
    drawing = Drawing(WIDTH, 14 * mm)
    drawing.add(Rect(30, 5, WIDTH - 40, 10 * mm, fillColor=colors.whitesmoke,
                     strokeColor=colors.lightgrey))
    for drill in drills:
        colour = colors.HexColor("#2e7d32" if drill.ok else "#c62828")
        drawing.add(Rect(_x(month, drill.time, WIDTH) - 3, 8, 6, 10 * mm - 6,
                         fillColor=colour, strokeColor=colour))
    return drawing


def _story(report: SiteReport) -> list[Any]:
    story: list[Any] = [_para(text.title(report), "Title")]
    story += [_para(line) for line in text.verdict(report)]
    story += [_para("What is protected", "Heading2"), _table(None, text.protected(report)),
              _para(f"Backups in {report.month}", "Heading2")]
    story.append(_table(text.BACKUP_HEADER, text.backup_rows(report)) if report.backups
                 else _para(text.no_backups(report)))
    story += [_para("Repository size", "Heading2"),
              _chart(report.month, report.size_series, lambda v: size(int(v))),
              _para("Backup duration", "Heading2"),
              _chart(report.month, report.duration_series, text.seconds),
              _para("Drills", "Heading2"), _strip(report.month, report.drills)]
    if not report.drills:
        story.append(_para(text.no_drills(report)))
    for drill in report.drills:
        story.append(_para(text.drill_heading(drill.time, drill.repository, drill.snapshot,
                                              drill.ok)))
        story.append(_table(("Check", "Result", "Detail"),
                            [(c.name, c.result, c.detail) for c in drill.checks]))
    story += [_para("Retention and copies", "Heading2"), _para(text.retention(report)),
              _table(text.REPOSITORY_HEADER, text.repository_rows(report)),
              _para("Master key", "Heading2"), *[_para(x) for x in text.key_lines(report)],
              Spacer(1, 6 * mm), _para(text.footer(report), "Italic")]
    return story


def write(path: Path, reports: Sequence[SiteReport]) -> None:
    """One page (or more) per site."""
    story: list[Any] = []
    for index, report in enumerate(reports):
        if index:
            story.append(PageBreak())
        story += _story(report)
    doc = SimpleDocTemplate(str(path), pagesize=A4, title=text.title(reports[0]),
                            leftMargin=20 * mm, rightMargin=20 * mm, topMargin=15 * mm,
                            bottomMargin=15 * mm)
    doc.build(story)
