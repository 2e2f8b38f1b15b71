"""``flowsafe report`` through the real CLI: the HTML rendered by a real browser (headless
Chromium: PNG, page text, no console message, no request), the PDF read by pdftotext,
the faults (a month without backups, an unknown site, bad options), and the fleet view
from a host that only attaches to the repository."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from datetime import UTC, datetime
from pathlib import Path

import pytest

from flowsafe.mariadb.instance import PrivateServer
from flowsafe.sample import build_site
from tests.cli import SiteUnderTest, flowsafe

CHROMIUM_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu",
                  "--disable-background-networking", "--disable-component-update",
                  "--disable-sync", "--no-first-run", "--enable-logging=stderr", "--v=0")
THIS_MONTH = datetime.now(UTC).strftime("%Y-%m")


@pytest.fixture(scope="module")
def site(mariadb_server: PrivateServer, tmp_path_factory: pytest.TempPathFactory
         ) -> SiteUnderTest:
    """A site with one backup and one drill this month."""
    tmp = tmp_path_factory.mktemp("report")
    sample = build_site(tmp / "www" / "itflow", mariadb_server.target(),
                        database="itflow_report", seed=19, scale=0.3)
    made = SiteUnderTest(sample, mariadb_server, tmp)
    made.ok("init", "--site", str(sample.path), "--name", "itflow", "--repo",
            str(tmp / "repo"), "--state-dir", str(tmp / "state"), "--db-socket",
            mariadb_server.socket)
    made.ok("backup")
    made.ok("drill")
    return made


def _chromium(page: Path, tmp: Path, *args: str) -> subprocess.CompletedProcess[str]:
    browser = shutil.which("chromium")
    if browser is None:
        pytest.fail("chromium is not installed: apt-get install chromium")
    profile = tmp / f"profile-{len(list(tmp.glob('profile-*')))}"
    return subprocess.run([browser, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *args,
                           page.as_uri()], capture_output=True, text=True, timeout=120,
                          check=False)


def _secrets(site: SiteUnderTest) -> list[str]:
    return [(site.config.parent / "default.password").read_text().strip(),
            site.sample.db_password, site.sample.master_key]


def test_html_renders_in_chromium(site: SiteUnderTest, tmp_path: Path) -> None:
    page = tmp_path / "report.html"
    done = site.ok("report", "--out", str(page))
    assert f"1 backups and 1 drills in {THIS_MONTH}" in done.stdout
    html = page.read_text()
    assert not re.search(r"""(src|href)\s*=|url\(|@import|<script|<link""", html, re.I)
    assert not re.findall(r"https?://(?!www\.w3\.org/2000/svg)", html)
    shot = tmp_path / "report.png"
    drawn = _chromium(page, tmp_path, "--window-size=900,2200", f"--screenshot={shot}")
    assert drawn.returncode == 0, drawn.stderr[-2000:]
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 20_000
    dom = _chromium(page, tmp_path, "--dump-dom")
    assert dom.returncode == 0, dom.stderr[-2000:]
    for output in (drawn.stderr, dom.stderr):
        assert ":CONSOLE" not in output, output  # no error, no blocked request
    text = re.sub(r"<[^>]+>", " ", dom.stdout)
    snapshot = site.snapshots()[0]["short_id"]
    for expected in (f"Backup report: site itflow, {THIS_MONTH}", "What is protected",
                     "ITFlow version", "26.08", snapshot, "repository 'default'", "PASSED",
                     "table values", "Retention (per repository): keep 3 last, 7 daily",
                     "The master key is NOT escrowed", "Repository size", "Backup duration"):
        assert expected in text, expected
    assert dom.stdout.count("<svg") == 3
    for secret in _secrets(site):
        assert secret not in html


def test_pdf_has_the_same_content(site: SiteUnderTest, tmp_path: Path) -> None:
    pdf = tmp_path / "report.pdf"
    site.ok("report", "--out", str(pdf), "--month", THIS_MONTH)
    assert pdf.read_bytes()[:5] == b"%PDF-"
    text = subprocess.run(["pdftotext", "-layout", str(pdf), "-"], capture_output=True,
                          text=True, check=True).stdout
    snapshot = site.snapshots()[0]["short_id"]
    for expected in (f"Backup report: site itflow, {THIS_MONTH}", "What is protected",
                     snapshot, "PASSED", "table values", "Retention (per repository)",
                     "Master key", "Repository size", "Backup duration"):
        assert expected in text, expected
    for secret in _secrets(site):
        assert secret not in text


def test_month_without_backups_says_so(site: SiteUnderTest, tmp_path: Path) -> None:
    page = tmp_path / "old.html"
    done = site.ok("report", "--out", str(page), "--month", "2020-01")
    assert "site itflow: no backup in 2020-01" in done.stdout
    html = page.read_text()
    assert "No backup of site itflow in 2020-01." in html
    assert "No drill of site itflow in 2020-01." in html
    assert "no backup of this site up to the end of the month" in html


def test_bad_requests_exit_2(site: SiteUnderTest, tmp_path: Path) -> None:
    out = tmp_path / "r.html"
    done = site.run("report", "--site", "nope", "--out", str(out))
    assert done.returncode == 2 and "no site named 'nope'" in done.stderr
    done = site.run("report", "--month", "2026-13", "--out", str(out))
    assert done.returncode == 2 and "use YYYY-MM" in done.stderr
    done = site.run("report", "--out", str(tmp_path / "r.txt"))
    assert done.returncode == 2 and "an .html or a .pdf file" in done.stderr
    assert not out.exists()


def test_fleet_host_sees_every_site_in_the_repository(site: SiteUnderTest,
                                                      tmp_path: Path) -> None:
    watcher = tmp_path / "watch" / "flowsafe.toml"
    attach = flowsafe(watcher, "init", "--repo", str(site.tmp / "repo"),
                      "--repo-password-file", str(site.config.parent / "default.password"),
                      "--state-dir", str(tmp_path / "watch-state"))
    assert attach.returncode == 0, attach.stderr
    status = flowsafe(watcher, "status", "--all", "--json")
    assert status.returncode == 0, status.stdout + status.stderr
    [row] = json.loads(status.stdout)
    assert row["site"] == "itflow" and row["configured"] is False
    assert row["snapshots"] == 1 and row["last_drill_ok"] is True
    assert row["last_backup_seconds"] > 0  # from the run record, written on the site's VM
    human = flowsafe(watcher, "status")  # nothing configured here: the fleet by default
    assert "site itflow (found in the repository)" in human.stdout
    page = tmp_path / "fleet.html"
    done = flowsafe(watcher, "report", "--all", "--out", str(page))
    assert done.returncode == 0, done.stderr
    assert "Backup report: site itflow" in page.read_text()
    unknown = flowsafe(watcher, "report", "--site", "nope", "--out", str(page))
    assert unknown.returncode == 2 and "in the config or in its repositories" in unknown.stderr
