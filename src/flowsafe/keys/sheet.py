"""What the recovery sheet says: everything a stranger needs to bring a dead site back on
a new server, in the order they need it. The steps are fixed text (the README's "New
server from the recovery sheet" repeats them word for word); the site's own values go
in the commands beside them: the install command, the one ``flowsafe recover`` line
(off-site repository first), every repository with its URL, the secrets, the last drill.
Drawing the PDF is ``keys/sheet_pdf.py``."""

from __future__ import annotations

import shlex
import socket
import sys
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from flowsafe.config import Config
from flowsafe.drill.record import DrillRecord, history
from flowsafe.errors import FlowsafeError
from flowsafe.init import BACKEND_ENVIRONMENT
from flowsafe.keys import escrow
from flowsafe.offsite.placement import offsite_warning, placements
from flowsafe.restic import Restic
from flowsafe.secret import Secret
from flowsafe.signature import read_key
from flowsafe.sites import open_site, repository

PASSWORD_FILE = "/root/repo.pw"
KEY_FILE = "/root/master.key"
SIGNING_KEY_FILE = "/root/signing.key"
IDENTITY_FILE = "/root/age.identity"
# Written by scripts/install.sh (make install): the URL the running flowsafe was cloned from.
SOURCE_RECORD = Path(sys.prefix) / "flowsafe-source"
NO_SOURCE = "<URL of your flowsafe clone>"
INSTALL_TITLE = "Install flowsafe"
RECOVER_TITLE = "Recover"

STEPS = (
    "1. Take a fresh Debian 12 server and log in as root.",
    f'2. Run the command under "{INSTALL_TITLE}". It installs git, make, MariaDB, restic, PHP '
    "and flowsafe.",
    f'3. Save the repository password: run "umask 077; cat > {PASSWORD_FILE}", then type it '
    "from this sheet (or scan its QR code), press Enter, then Ctrl-D.",
    f"4. Save the master key the same way in {KEY_FILE}, and the snapshot signing key in "
    f"{SIGNING_KEY_FILE}. When the master key is not on this sheet, follow the note under the "
    "repositories instead.",
    "5. When a repository below lists variables (S3 or B2 credentials), set each one first: "
    "export NAME='value'.",
    f'6. Run the command under "{RECOVER_TITLE}" (add --base-url https://NEW-ADDRESS when the '
    "site moves to a new address). It restores the files and the database, checks that every "
    "credential decrypts, backs the site up again and prints what is left to do by hand: the "
    "web server, ITFlow's cron lines, flowsafe schedule install.",
    "7. Log in to ITFlow. Print a new recovery sheet on the new server (flowsafe key sheet), "
    f"then shred -u {PASSWORD_FILE} {KEY_FILE} {SIGNING_KEY_FILE}.",
)


@dataclass(frozen=True)
class SheetRepository:
    """A repository the site is in, as a new server reaches it."""

    name: str
    url: str
    offsite: bool
    variables: list[str]  # backend credentials restic needs in the environment


@dataclass(frozen=True)
class SheetSecret:
    """A secret printed as text and QR code."""

    label: str
    value: Secret


@dataclass(frozen=True)
class SheetContent:
    """Everything the sheet prints, in the order it prints it."""

    site: str
    created: datetime
    host: str
    verified: str
    warnings: list[str]
    install: str
    recover: str
    repositories: list[SheetRepository]
    key_note: str | None
    instructions: str
    secrets: list[SheetSecret] = field(default_factory=list)
    steps: tuple[str, ...] = STEPS


def install_source(config: Config) -> str | None:
    """Where a new server clones flowsafe from: ``[sheet] source``, else the clone
    ``make install`` recorded."""
    if config.sheet.source:
        return config.sheet.source
    try:
        recorded = SOURCE_RECORD.read_text().strip()
    except OSError:
        return None
    return recorded or None


def install_command(source: str | None) -> str:
    """The one command line that installs flowsafe on a fresh Debian 12 (as root)."""
    clone = shlex.quote(source) if source else NO_SOURCE
    return ("apt-get update && apt-get install -y git make mariadb-server && "
            f"git clone {clone} flowsafe && cd flowsafe && make install")


def verified_line(drills: list[DrillRecord]) -> str:
    """The last drill's verdict, plainly: when the backups last proved restorable."""
    passed = [d for d in drills if d.ok]
    if not drills:
        return ("Never drilled: nobody has proven that these backups restore. Run flowsafe "
                "drill on the old server, if it still exists.")
    line = (f"Verified restorable on {passed[-1].time:%Y-%m-%d} (drill of snapshot "
            f"{passed[-1].snapshot})." if passed else "Never verified restorable.")
    if not drills[-1].ok:
        line += f" The last drill, on {drills[-1].time:%Y-%m-%d}, FAILED."
    return line


@dataclass(frozen=True)
class _Records:
    drills: list[DrillRecord]  # oldest first, from every repository of the site
    escrowed: bool
    unread: list[str]  # repositories that could not be read, and why


def _records(restics: list[Restic], site: str) -> _Records:
    """The site's drills and whether its key is escrowed, in any of these repositories."""
    drills: list[DrillRecord] = []
    escrowed = False
    unread = []
    for restic in restics:
        try:
            drills += history(restic, site)
            escrowed = escrowed or bool(escrow.records(restic, site))
        except FlowsafeError as exc:
            unread.append(f"could not read the drill and key records in "
                          f"{restic.repo.display_url}: {exc}")
    return _Records(sorted(drills, key=lambda d: d.time), escrowed, unread)


def _recover_line(site: str, repo_url: str, target: str, database: str,
                  key_option: str) -> str:
    return shlex.join(["flowsafe", "recover", "--repo", repo_url, "--repo-password-file",
                       PASSWORD_FILE, "--site", site, "--to", target, "--database", database,
                       *key_option.split(), "--signing-key-file", SIGNING_KEY_FILE, "--yes"])


def _key(key: Secret | None, escrowed: bool) -> tuple[str, str | None]:
    """The recover line's key option, and a note when the key is not on the sheet."""
    if key is not None:
        return f"--key-file {KEY_FILE}", None
    if escrowed:
        return f"--age-identity {IDENTITY_FILE}", (
            "The master key is not on this sheet: it is escrowed in the repository. Put the "
            f"age identity it was sealed for (AGE-SECRET-KEY-..., kept off the old server) in "
            f"{IDENTITY_FILE}, mode 0600; for a passphrase escrow use --escrow-passphrase-file "
            "FILE instead.")
    return f"--key-file {KEY_FILE}", (
        "The master key is neither on this sheet nor escrowed in the repository: find it "
        "(16 characters) before you start; without it the stored client passwords stay "
        "encrypted.")


def build(config: Config, site: str, *, created: datetime, key: Secret | None,
          with_passwords: bool) -> SheetContent:
    """The sheet of a configured site (its own repository and its copies, off-site first)."""
    found = placements(config, site)
    restics = {p.name: repository(config, p.name) for p in found}
    opened = open_site(config, site)
    records = _records(list(restics.values()), site)
    key_option, key_note = _key(key, records.escrowed)
    warnings = [w for w in (offsite_warning(config, site),) if w] + records.unread
    source = install_source(config)
    if source is None:
        warnings.append("this sheet does not say where to clone flowsafe from: set [sheet] "
                        "source in the config and print it again")
    repositories = []
    passwords: dict[Secret, list[str]] = {}
    variables: list[SheetSecret] = []
    for place in found:
        repo = config.repositories[place.name]
        needed = [n for n in BACKEND_ENVIRONMENT.get(repo.url.split(":", 1)[0], ())
                  if n in repo.environment]
        repositories.append(SheetRepository(place.name, restics[place.name].repo.display_url,
                                            place.offsite, needed))
        if with_passwords:
            passwords.setdefault(Secret.from_file(repo.password_file), []).append(place.name)
            variables += [SheetSecret(f"{name} of repository '{place.name}'",
                                      Secret(repo.environment[name])) for name in needed]
    secrets = [SheetSecret("Password of repository " + ", ".join(f"'{n}'" for n in names)
                           + (" (the Recover command's)" if n == 0 else ""), password)
               for n, (password, names) in enumerate(passwords.items())] + variables
    if key is not None:
        secrets.append(SheetSecret("ITFlow master encryption key", key))
    signing = read_key(config.signing_key_file(site))
    secrets.append(SheetSecret(f"Snapshot signing key of site '{site}' (restores check every "
                               "snapshot with it)", Secret(signing.hex())))
    return SheetContent(
        site=site, created=created, host=socket.gethostname(),
        verified=verified_line(records.drills),
        warnings=warnings, install=install_command(source),
        recover=_recover_line(site, found[0].url, str(opened.install.path),
                              opened.database.database, key_option),
        repositories=repositories, key_note=key_note, instructions=config.sheet.instructions,
        secrets=secrets)
