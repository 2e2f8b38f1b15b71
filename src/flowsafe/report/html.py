"""The report as one self-contained HTML file: inline CSS, inline SVG charts, and a
Content-Security-Policy that forbids any request, so the page cannot reach out."""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

from flowsafe.render import size
from flowsafe.report import charts, text
from flowsafe.report.model import SiteReport

CSS = """
body { font-family: "DejaVu Sans", Arial, sans-serif; color: #222; margin: 0; }
section { max-width: 800px; margin: 0 auto; padding: 24px; page-break-after: always; }
h1 { font-size: 22px; margin: 0 0 4px; } h2 { font-size: 16px; margin: 22px 0 6px; }
table { border-collapse: collapse; width: 100%; font-size: 12px; }
th, td { border-bottom: 1px solid #ddd; padding: 3px 6px; text-align: left; }
th { background: #f0f0f0; } .ok { color: #2e7d32; } .failed { color: #c62828; }
.skipped { color: #8d6e00; } .verdict { padding: 8px 12px; border-radius: 4px; }
.state-ok { background: #e8f5e9; } .state-warning { background: #fff8e1; }
.state-problem { background: #ffebee; } .muted { color: #666; font-size: 11px; }
"""
POLICY = "default-src 'none'; style-src 'unsafe-inline'; img-src data:"


def _table(header: Sequence[str] | None, rows: Sequence[Sequence[str]]) -> str:
    head = "".join(f"<th>{escape(h)}</th>" for h in header or ())
    body = "".join("<tr>" + "".join(f"<td>{escape(c)}</td>" for c in row) + "</tr>"
                   for row in rows)
    return f"<table>{f'<tr>{head}</tr>' if head else ''}{body}</table>"


def _section(report: SiteReport) -> str:
    verdict = text.verdict(report)
    parts = [f"<section><h1>{escape(text.title(report))}</h1>",
             f'<div class="verdict state-{report.status.state}"><strong>{escape(verdict[0])}'
             "</strong>" + "".join(f"<br>{escape(line)}" for line in verdict[1:]) + "</div>",
             "<h2>What is protected</h2>", _table(None, text.protected(report)),
             f"<h2>Backups in {report.month}</h2>"]
    if report.backups:
        parts.append(_table(text.BACKUP_HEADER, text.backup_rows(report)))
    else:
        parts.append(f"<p>{escape(text.no_backups(report))}</p>")
    parts += ["<h2>Repository size</h2>",
              charts.line_chart("Repository size", report.month, report.size_series, _bytes),
              "<h2>Backup duration</h2>",
              charts.line_chart("Backup duration", report.month, report.duration_series,
                                text.seconds),
              "<h2>Drills</h2>", charts.drill_strip(report.month, report.drills)]
    if not report.drills:
        parts.append(f"<p>{escape(text.no_drills(report))}</p>")
    for drill in report.drills:
        mark = "ok" if drill.ok else "failed"
        parts.append(f'<p class="{mark}">' + escape(text.drill_heading(
            drill.time, drill.repository, drill.snapshot, drill.ok)) + "</p>")
        rows = "".join(f'<tr><td>{escape(c.name)}</td><td class="{escape(c.result)}">'
                       f"{escape(c.result)}</td><td>{escape(c.detail)}</td></tr>"
                       for c in drill.checks)
        parts.append(f"<table><tr><th>Check</th><th>Result</th><th>Detail</th></tr>{rows}"
                     "</table>")
    parts += ["<h2>Retention and copies</h2>", f"<p>{escape(text.retention(report))}</p>",
              _table(text.REPOSITORY_HEADER, text.repository_rows(report)),
              "<h2>Master key</h2>",
              "".join(f"<p>{escape(line)}</p>" for line in text.key_lines(report)),
              f'<p class="muted">{escape(text.footer(report))}</p></section>']
    return "".join(parts)


def _bytes(value: float) -> str:
    return size(int(value))


def render(reports: Sequence[SiteReport]) -> str:
    """One page per site in one document."""
    title = text.title(reports[0]) if len(reports) == 1 else "Backup report"
    return ("<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">"
            f'<meta http-equiv="Content-Security-Policy" content="{POLICY}">'
            f"<title>{escape(title)}</title><style>{CSS}</style></head><body>"
            + "".join(_section(r) for r in reports) + "</body></html>\n")
