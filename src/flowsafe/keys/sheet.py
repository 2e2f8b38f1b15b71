"""The printable recovery sheet: site, repository, the repository password and the
master key (each optional, each as text and QR code), the date and the restore steps."""

from __future__ import annotations

import os
from datetime import datetime
from pathlib import Path

import qrcode
from reportlab.lib.pagesizes import A4
from reportlab.lib.utils import ImageReader
from reportlab.pdfgen.canvas import Canvas

from flowsafe.secret import Secret

STEPS = [
    "1. On a new Debian/Ubuntu server: install flowsafe, restic, MariaDB, PHP and a web server.",
    "2. Save the repository password in a 0600 file, e.g. /root/repo.pw.",
    "3. flowsafe init --repo <repository> --repo-password-file /root/repo.pw",
    "4. flowsafe restore latest --site <site> --to-path /var/www/itflow --to-db itflow --yes",
    "5. Point the web server at /var/www/itflow, add ITFlow's cron line, log in.",
    "6. Lost every admin password? Put the master key in a 0600 file and run",
    "   flowsafe key rewrap --user you@example.com --key-file <file>",
    "7. flowsafe init --site /var/www/itflow, then flowsafe backup: protected again.",
]


def _secret_block(canvas: Canvas, y: float, label: str, value: Secret) -> float:
    image = qrcode.make(value.reveal()).get_image()
    canvas.setFont("Helvetica-Bold", 12)
    canvas.drawString(50, y, label)
    canvas.setFont("Courier", 11)
    canvas.drawString(50, y - 18, value.reveal())
    canvas.drawImage(ImageReader(image), 400, y - 120, width=130, height=130)
    return y - 150


def write_sheet(out: Path, *, site: str, repository: str, created: datetime,
                repository_password: Secret | None, master_key: Secret | None) -> None:
    """Write the sheet as a PDF readable by its owner only (0600 from the first byte)."""
    pending = out.with_name(f".{out.name}.partial")
    old_mask = os.umask(0o077)
    try:
        canvas = Canvas(str(pending), pagesize=A4)
        height = A4[1]
        canvas.setTitle(f"flowsafe recovery sheet: {site}")
        canvas.setFont("Helvetica-Bold", 18)
        canvas.drawString(50, height - 60, "flowsafe recovery sheet")
        canvas.setFont("Helvetica", 11)
        y = height - 90
        for line in (f"Site: {site}", f"Repository: {repository}",
                     f"Printed: {created:%Y-%m-%d %H:%M %Z}",
                     "Keep this sheet locked away. Anyone holding it can read the backups."):
            canvas.drawString(50, y, line)
            y -= 16
        y -= 20
        if repository_password is not None:
            y = _secret_block(canvas, y, "Repository password", repository_password)
        if master_key is not None:
            y = _secret_block(canvas, y, "ITFlow master encryption key", master_key)
        canvas.setFont("Helvetica-Bold", 12)
        canvas.drawString(50, y, "Restore steps")
        canvas.setFont("Helvetica", 10)
        for line in STEPS:
            y -= 15
            canvas.drawString(50, y, line)
        canvas.save()
        os.chmod(pending, 0o600)
        os.replace(pending, out)
    finally:
        os.umask(old_mask)
        pending.unlink(missing_ok=True)
