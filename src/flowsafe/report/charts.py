"""The report's two charts as inline SVG: a value over the month (repository size,
backup duration) and the drill results as a strip of coloured marks."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from html import escape

from flowsafe.report.model import DrillRow, Month

WIDTH, HEIGHT, PAD = 640, 160, 64
OK, FAILED = "#2e7d32", "#c62828"


def _x(month: Month, moment: datetime) -> float:
    span = (month.end - month.start).total_seconds()
    return PAD + (WIDTH - 2 * PAD) * (moment - month.start).total_seconds() / span


def line_chart(title: str, month: Month, points: Sequence[tuple[datetime, float]],
               label: Callable[[float], str]) -> str:
    """A line over the month; an empty chart says there is nothing to draw."""
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" role="img" viewBox="0 0 {WIDTH} '
             f'{HEIGHT}" width="{WIDTH}" height="{HEIGHT}"><title>{escape(title)}</title>',
             f'<rect x="{PAD}" y="10" width="{WIDTH - 2 * PAD}" height="{HEIGHT - 40}" '
             'fill="#fafafa" stroke="#ccc"/>']
    if not points:
        parts.append(f'<text x="{WIDTH / 2}" y="{HEIGHT / 2}" text-anchor="middle" '
                     'fill="#777">no data in this month</text></svg>')
        return "".join(parts)
    top = max(value for _, value in points) or 1.0
    bottom = HEIGHT - 30

    def y(value: float) -> float:
        return bottom - (bottom - 14) * value / top

    coords = " ".join(f"{_x(month, t):.1f},{y(v):.1f}" for t, v in points)
    parts.append(f'<polyline points="{coords}" fill="none" stroke="#1565c0" stroke-width="2"/>')
    parts += [f'<circle cx="{_x(month, t):.1f}" cy="{y(v):.1f}" r="3" fill="#1565c0"/>'
              for t, v in points]
    parts.append(f'<text x="{PAD - 4}" y="18" text-anchor="end" font-size="10">'
                 f'{escape(label(top))}</text>')
    parts.append(f'<text x="{PAD - 4}" y="{bottom}" text-anchor="end" font-size="10">0</text>')
    parts += _days(month, HEIGHT - 12)
    return "".join(parts) + "</svg>"


def _days(month: Month, y: float) -> list[str]:
    """Day labels along the bottom (1, 8, 15, 22, 29)."""
    length = (month.end - month.start).days
    return [f'<text x="{_x(month, month.start.replace(day=day)):.1f}" y="{y}" font-size="10" '
            f'text-anchor="middle">{month.start.replace(day=day):%d %b}</text>'
            for day in (1, 8, 15, 22, 29) if day <= length]


def drill_strip(month: Month, drills: Sequence[DrillRow]) -> str:
    """One mark per drill at its day: green passed, red failed."""
    height = 70
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" role="img" viewBox="0 0 {WIDTH} '
             f'{height}" width="{WIDTH}" height="{height}"><title>Drill results</title>',
             f'<rect x="{PAD}" y="10" width="{WIDTH - 2 * PAD}" height="30" fill="#fafafa" '
             'stroke="#ccc"/>']
    for drill in drills:
        colour = OK if drill.ok else FAILED
        verdict = "passed" if drill.ok else "failed"
        parts.append(f'<rect x="{_x(month, drill.time) - 4:.1f}" y="14" width="8" height="22" '
                     f'fill="{colour}"><title>{drill.time:%Y-%m-%d %H:%M} {verdict}</title>'
                     '</rect>')
    if not drills:
        parts.append(f'<text x="{WIDTH / 2}" y="30" text-anchor="middle" fill="#777">'
                     'no drill in this month</text>')
    parts += _days(month, 58)
    return "".join(parts) + "</svg>"
