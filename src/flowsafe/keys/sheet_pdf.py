"""The recovery sheet as a PDF that survives printing and scanning: secrets in a large
monospace font (DejaVu Sans Mono when installed: slashed zero, distinct l, 1 and I), in
groups of 4, with every look-alike character named; each secret also as a QR code
labelled as holding the same string. Written 0600 from the first byte."""

from __future__ import annotations

import os
from pathlib import Path

import qrcode
from reportlab.lib.pagesizes import A4
from reportlab.lib.utils import ImageReader, simpleSplit
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.ttfonts import TTFont
from reportlab.pdfgen.canvas import Canvas

from flowsafe.keys.sheet import INSTALL_TITLE, RECOVER_TITLE, SheetContent, SheetSecret

MONO_FONTS = (Path("/usr/share/fonts/truetype/dejavu/DejaVuSansMono-Bold.ttf"),
              Path("/usr/share/fonts/truetype/dejavu/DejaVuSansMono.ttf"))
LOOK_ALIKES = {"0": "zero", "O": "capital O", "o": "small o", "1": "one", "l": "small L",
               "I": "capital i", " ": "space"}
VISIBLE_SPACE = "\u2423"  # drawn for a space inside a secret (DejaVu has it, Courier not)
GROUP = 4
GROUPS_PER_LINE = 5
QR_LABEL = "This QR code holds the same string as the text beside it."
MARGIN = 50.0
WIDTH, HEIGHT = A4
TEXT_WIDTH = WIDTH - 2 * MARGIN
SECRET_WIDTH = 330.0  # the secret's text column; the QR code sits right of it
QR_SIZE = 120.0


def mono_font() -> str:
    """DejaVu Sans Mono when installed (registered once), else Courier."""
    for path in MONO_FONTS:
        if path.is_file():
            if "FlowsafeMono" not in pdfmetrics.getRegisteredFontNames():
                pdfmetrics.registerFont(TTFont("FlowsafeMono", str(path)))
            return "FlowsafeMono"
    return "Courier-Bold"


def groups(value: str) -> list[str]:
    """The secret in groups of 4 characters."""
    return [value[i:i + GROUP] for i in range(0, len(value), GROUP)]


def look_alikes(value: str) -> str:
    """Every look-alike character of the secret, by group and place, named."""
    found = [f"{i // GROUP + 1}.{i % GROUP + 1} {LOOK_ALIKES[c]}"
             for i, c in enumerate(value) if c in LOOK_ALIKES]
    return ("Look-alikes (group.character): " + ("; ".join(found) if found else "none")
            + ".")


def shown(value: str, font: str) -> str:
    """The secret as drawn: a space inside it as a visible mark where the font has one."""
    return value.replace(" ", VISIBLE_SPACE) if font != "Courier-Bold" else value


class _Page:
    """A canvas with a cursor that flows text down the page and onto the next."""

    def __init__(self, canvas: Canvas, title: str) -> None:
        self.canvas = canvas
        self.title = title
        self.y = HEIGHT - MARGIN

    def need(self, height: float) -> None:
        if self.y - height < MARGIN:
            self.canvas.showPage()
            self.y = HEIGHT - MARGIN
            self.line(f"{self.title} (continued)", "Helvetica", 9)

    def line(self, text: str, font: str = "Helvetica", size: float = 10,
             width: float = TEXT_WIDTH, x: float = MARGIN) -> None:
        """Text wrapped to ``width``, moving the cursor below it."""
        for part in simpleSplit(text, font, size, width) or [""]:
            self.need(size * 1.35)
            self.canvas.setFont(font, size)
            self.canvas.drawString(x, self.y - size, part)
            self.y -= size * 1.35

    def heading(self, text: str) -> None:
        self.need(40)
        self.y -= 8
        self.line(text, "Helvetica-Bold", 13)

    def warning(self, text: str) -> None:
        lines = simpleSplit(f"WARNING: {text}", "Helvetica-Bold", 12, TEXT_WIDTH - 16)
        height = len(lines) * 16 + 10
        self.need(height + 6)
        self.canvas.setLineWidth(2.5)
        self.canvas.rect(MARGIN, self.y - height, TEXT_WIDTH, height)
        self.y -= 5
        for part in lines:
            self.canvas.setFont("Helvetica-Bold", 12)
            self.canvas.drawString(MARGIN + 8, self.y - 12, part)
            self.y -= 16
        self.y -= 11

    def secret(self, item: SheetSecret, font: str) -> None:
        value = item.value.reveal()
        parts = groups(shown(value, font))
        rows = [parts[i:i + GROUPS_PER_LINE] for i in range(0, len(parts), GROUPS_PER_LINE)]
        notes = simpleSplit(look_alikes(value), "Helvetica", 8.5, SECRET_WIDTH)
        height = max(22 + len(rows) * 24 + len(notes) * 11, QR_SIZE + 30) + 12
        self.need(height)
        top = self.y
        self.line(f"{item.label} ({len(value)} characters, in groups of {GROUP}; the spaces "
                  "between groups are not part of it)", "Helvetica-Bold", 10.5, SECRET_WIDTH)
        self.y -= 4
        for row in rows:
            self.canvas.setFont(font, 17)
            self.canvas.drawString(MARGIN, self.y - 17, "  ".join(row))
            self.y -= 24
        for note in notes:
            self.line(note, "Helvetica", 8.5, SECRET_WIDTH)
        image = qrcode.make(value, border=2).get_image()
        x = WIDTH - MARGIN - QR_SIZE
        self.canvas.drawImage(ImageReader(image), x, top - QR_SIZE, QR_SIZE, QR_SIZE)
        self.canvas.setFont("Helvetica", 7.5)
        for n, part in enumerate(simpleSplit(QR_LABEL, "Helvetica", 7.5, QR_SIZE)):
            self.canvas.drawString(x, top - QR_SIZE - 10 - n * 9, part)
        self.y = top - height


def _draw(canvas: Canvas, sheet: SheetContent) -> None:
    title = f"flowsafe recovery sheet: site {sheet.site}"
    page = _Page(canvas, title)
    font = mono_font()
    page.line(title, "Helvetica-Bold", 18)
    page.line(f"Printed {sheet.created:%Y-%m-%d %H:%M %Z} on {sheet.host}. Keep it locked "
              "away: whoever holds it can read the backups and every client password.")
    page.line(sheet.verified, "Helvetica-Bold", 11)
    for warning in sheet.warnings:
        page.warning(warning)
    page.heading("Steps")
    for step in sheet.steps:
        page.line(step, "Helvetica", 10, TEXT_WIDTH - 10, MARGIN + 10)
    page.heading(INSTALL_TITLE)
    page.line(sheet.install, font, 9.5)
    page.heading(RECOVER_TITLE)
    page.line(sheet.recover, font, 9.5)
    page.heading("Repositories (off-site first)")
    for repo in sheet.repositories:
        where = "off-site" if repo.offsite else "on the same machine as the site"
        page.line(f"'{repo.name}' ({where}): {repo.url}", font, 9.5)
        if repo.variables:
            page.line("needs in the environment: " + ", ".join(repo.variables)
                      + " (values below)", "Helvetica", 9, TEXT_WIDTH - 10, MARGIN + 10)
    if sheet.key_note:
        page.line(sheet.key_note, "Helvetica-Bold", 10)
    if sheet.instructions:
        page.heading("Instructions from your provider")
        for paragraph in sheet.instructions.splitlines():
            page.line(paragraph)
    if sheet.secrets:
        page.heading("Secrets")
        page.line("Look-alike characters, as the next line draws them: 0 zero, O capital O, "
                  "o small o, 1 one, l small L, I capital i, and the mark for a space inside a "
                  "secret. Under each secret: the ones it holds, by group and place (2.3 = "
                  "group 2, 3rd character).", "Helvetica", 9)
        page.line("In this font: " + "  ".join(shown(c, font) for c in LOOK_ALIKES), font, 14)
        page.y -= 6
        for item in sheet.secrets:
            page.secret(item, font)


def write_sheet(out: Path, sheet: SheetContent) -> None:
    """Write the sheet as a PDF readable by its owner only (0600 from the first byte)."""
    pending = out.with_name(f".{out.name}.partial")
    old_mask = os.umask(0o077)
    try:
        canvas = Canvas(str(pending), pagesize=A4)
        canvas.setTitle(f"flowsafe recovery sheet: {sheet.site}")
        _draw(canvas, sheet)
        canvas.save()
        os.chmod(pending, 0o600)
        os.replace(pending, out)
    finally:
        os.umask(old_mask)
        pending.unlink(missing_ok=True)
