"""The recovery sheet read as a stranger would: the PDF rendered to PNG (pdftoppm), every
QR code decoded (zbarimg) and compared with the secrets, the text (pdftotext) checked
for the steps, the install command, the recover line, the repositories (off-site first),
the last drill and the "not off-site" warning (the README repeats the steps: test_docs)."""

from __future__ import annotations

import json
import re
import shlex
from datetime import UTC, datetime
from pathlib import Path

import pytest

from flowsafe.config import Config, SheetSettings, load_config, render_config, save_config
from flowsafe.drill.record import DrillRecord
from flowsafe.execute import run
from flowsafe.keys.sheet import STEPS, verified_line
from flowsafe.mariadb.instance import PrivateServer
from flowsafe.offsite.placement import on_this_machine
from flowsafe.sample import SampleSite, build_site
from flowsafe.secret import write_private
from tests.cli import SiteUnderTest, edit_config
from tests.s3 import S3Server

SOURCE = "https://git.example.com/msp/flowsafe.git"
OFFSITE_PASSWORD = "Il10Oo off-site password"


def _flat(text: str) -> str:
    return " ".join(text.split())


def _read(pdf: Path) -> tuple[str, list[str]]:
    """The sheet's text (layout kept) and what every QR code on it holds."""
    text = run(["pdftotext", "-layout", str(pdf), "-"]).stdout.decode()
    run(["pdftoppm", "-r", "100", "-png", str(pdf), str(pdf.with_suffix(""))])
    codes = []
    for page in sorted(pdf.parent.glob(f"{pdf.stem}-*.png")):
        found = run(["zbarimg", "--quiet", "--raw", "-Sdisable", "-Sqrcode.enable", str(page)],
                    check=False)
        codes += found.stdout.decode().splitlines()
    return text, codes


def _printed(text: str, secret: str) -> bool:
    """Whether the secret is on the sheet as its groups of 4, five to a line."""
    drawn = secret.replace(" ", "\u2423")  # a space inside a secret is drawn visibly
    groups = [drawn[i:i + 4] for i in range(0, len(drawn), 4)]
    rows = [groups[i:i + 5] for i in range(0, len(groups), 5)]
    return all(re.search(r"\s+".join(re.escape(g) for g in row), text) for row in rows)


@pytest.fixture(scope="module")
def sample(mariadb_server: PrivateServer, tmp_path_factory: pytest.TempPathFactory
           ) -> SampleSite:
    root = tmp_path_factory.mktemp("www-sheet")
    return build_site(root / "itflow", mariadb_server.target(), database="itflow_sheet",
                      seed=23, scale=0.2)


def test_sheet_of_a_site_with_and_without_an_offsite_copy(
        sample: SampleSite, mariadb_server: PrivateServer, s3_server: S3Server,
        tmp_path: Path) -> None:
    site = SiteUnderTest(sample, mariadb_server, tmp_path)
    done = site.ok("init", "--site", str(sample.path), "--name", "itflow", "--repo",
                   str(tmp_path / "repo"), "--state-dir", str(tmp_path / "state"),
                   "--db-socket", mariadb_server.socket)
    assert "not off-site: add a copy, see copy_to" in done.stdout
    key = tmp_path / "secrets" / "master.key"
    write_private(key, sample.master_key + "\n")
    site.ok("backup")
    status = site.run("status", "--json")
    assert status.returncode == 0  # a warning, not an error exit
    row = json.loads(status.stdout)[0]
    assert row["state"] == "warning"
    assert any(w.startswith("not off-site: add a copy, see copy_to") for w in row["warnings"])
    assert "warning: not off-site" in site.ok("status").stdout

    alone = tmp_path / "alone.pdf"
    made = site.ok("key", "sheet", "--out", str(alone), "--key-file", str(key))
    assert "set [sheet] source" in made.stderr and str(alone) in made.stdout
    text, codes = _read(alone)
    flat = _flat(text)
    assert "WARNING: not off-site: add a copy, see copy_to" in flat
    assert "Never drilled: nobody has proven that these backups restore." in flat
    assert "<URL of your flowsafe clone>" in flat
    local_password = (tmp_path / "etc" / "default.password").read_text().strip()
    signing = (tmp_path / "etc" / "itflow.signing-key").read_text().strip()
    assert sorted(codes) == sorted([local_password, sample.master_key, signing])
    assert _printed(text, local_password) and _printed(text, sample.master_key)

    # An off-site copy on S3 with its own password and credentials, a drill of it, the
    # MSP's own instructions: the sheet a stranger gets.
    password = tmp_path / "etc" / "offsite.password"
    write_private(password, OFFSITE_PASSWORD + "\n")
    keys = {k: v.reveal() for k, v in s3_server.environment().items()}
    url = s3_server.url("sheet-" + re.sub("[^a-z0-9]", "", tmp_path.name.lower())[-20:])
    edit_config(site.config, replace={"copy_to = []": 'copy_to = ["offsite"]'}, append=(
        f'[repositories.offsite]\nurl = "{url}"\npassword_file = "{password}"\n'
        f'environment = {json.dumps(keys).replace(":", " =")}\n\n'
        f'[sheet]\nsource = "{SOURCE}"\n'
        'instructions = "Call the on-call line: +1 555 0100.\\nTemplates: vSphere/itflow."\n'))
    site.ok("backup")  # copied to offsite after the backup
    site.ok("drill", "--repository", "offsite", "--key-file", str(key))
    assert not any("not off-site" in w
                   for w in json.loads(site.ok("status", "--json").stdout)[0]["warnings"])

    sheet = tmp_path / "sheet.pdf"
    made = site.ok("key", "sheet", "--out", str(sheet), "--key-file", str(key))
    assert made.stderr == ""
    text, codes = _read(sheet)
    flat = _flat(text)
    assert "not off-site" not in flat
    for step in STEPS:
        assert step in flat, step
    install = ("apt-get update && apt-get install -y git make mariadb-server && git clone "
               f"{SOURCE} flowsafe && cd flowsafe && make install")
    assert install in flat
    recover = shlex.join(["flowsafe", "recover", "--repo", url, "--repo-password-file",
                          "/root/repo.pw", "--site", "itflow", "--to", str(sample.path),
                          "--database", "itflow_sheet", "--key-file", "/root/master.key",
                          "--signing-key-file", "/root/signing.key", "--yes"])
    assert recover in flat
    offsite = flat.index(f"'offsite' (off-site): {url}")
    local = flat.index(f"'default' (on the same machine as the site): {tmp_path / 'repo'}")
    assert offsite < local
    assert "needs in the environment: AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY" in flat
    assert re.search(r"Verified restorable on \d{4}-\d\d-\d\d \(drill of snapshot [0-9a-f]{8}\)",
                     flat)
    assert "Call the on-call line: +1 555 0100." in text and "Templates: vSphere/itflow." in text
    secrets = [OFFSITE_PASSWORD, local_password, *keys.values(), sample.master_key, signing]
    assert sorted(codes) == sorted(secrets)
    assert flat.count("This QR code holds the same string") == len(secrets)
    for secret in secrets:
        assert _printed(text, secret), secret
    assert ("1.1 capital i; 1.2 small L; 1.3 one; 1.4 zero; 2.1 capital O; 2.2 small o; "
            "2.3 space") in flat

    without = tmp_path / "nopw.pdf"
    site.ok("key", "sheet", "--out", str(without), "--no-repository-password")
    text, codes = _read(without)
    assert codes == [signing] and "--age-identity" not in text
    assert "neither on this sheet nor escrowed" in _flat(text)

    phrase = tmp_path / "secrets" / "escrow.pass"
    write_private(phrase, "escrow pass phrase\n")
    site.ok("key", "escrow", "--key-file", str(key), "--passphrase-file", str(phrase))
    escrowed = tmp_path / "escrowed.pdf"
    site.ok("key", "sheet", "--out", str(escrowed))
    flat = _flat(_read(escrowed)[0])
    assert recover.replace("--key-file /root/master.key", "--age-identity /root/age.identity") \
        in flat
    assert "The master key is not on this sheet: it is escrowed in the repository." in flat


def test_the_verified_line_says_what_the_drills_proved() -> None:
    def drill(day: int, ok: bool) -> DrillRecord:
        return DrillRecord(datetime(2026, 11, day, tzinfo=UTC), "itflow", f"{day:08x}", ok)

    assert verified_line([]).startswith("Never drilled: nobody has proven")
    assert verified_line([drill(1, True), drill(2, False)]) == (
        "Verified restorable on 2026-11-01 (drill of snapshot 00000001). The last drill, on "
        "2026-11-02, FAILED.")
    assert verified_line([drill(3, False)]) == (
        "Never verified restorable. The last drill, on 2026-11-03, FAILED.")


def test_sheet_settings_are_checked(sample: SampleSite, mariadb_server: PrivateServer,
                                    tmp_path: Path) -> None:
    site = SiteUnderTest(sample, mariadb_server, tmp_path)
    site.ok("init", "--site", str(sample.path), "--name", "itflow", "--repo",
            str(tmp_path / "repo"), "--state-dir", str(tmp_path / "state"),
            "--db-socket", mariadb_server.socket)
    edit_config(site.config, append='[sheet]\nsource = "x; rm -rf /"\ninstructions = "a\\u0007"\n')
    done = site.run("status")
    assert done.returncode == 2
    assert "At 'sheet.source': Value error, must be a git URL" in done.stderr
    assert "At 'sheet.instructions': Value error, must be plain printable text" in done.stderr



@pytest.mark.parametrize(("url", "here"), [
    ("/var/backups/flowsafe", True), ("local:/srv/restic", True), ("relative/repo", True),
    ("s3:https://s3.example.com/bucket/itflow", False), ("s3:s3.amazonaws.com/bucket", False),
    ("sftp:backup@vault.example.com:/srv/itflow", False), ("rest:http://127.0.0.1:8000/", False),
    ("b2:bucket:itflow", False), ("rclone:remote:itflow", False)])
def test_which_repositories_are_on_this_machine(url: str, here: bool) -> None:
    assert on_this_machine(url) is here


def test_sheet_settings_survive_the_config_being_written_again(tmp_path: Path) -> None:
    sheet = SheetSettings(source=SOURCE, instructions="Call +1 555 0100.\n'Templates' \"here\"")
    config = Config(sheet=sheet)
    path = tmp_path / "flowsafe.toml"
    save_config(config, path)
    assert load_config(path).sheet == sheet
    assert "[sheet]" not in render_config(Config())  # only written when set
