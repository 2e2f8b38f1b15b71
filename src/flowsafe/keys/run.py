"""``flowsafe key ...`` and ``flowsafe credentials export``: the master key retrieved,
escrowed, verified, and used to recover or re-grant access. No key, repository
password or decrypted credential is ever written to disk in plain text."""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from flowsafe.backup import ProgressFn, backup_site
from flowsafe.catalog import (
    TrustOptions,
    read_manifest,
    resolve,
    site_repository,
    staging_path,
    trust_for,
)
from flowsafe.config import Config, select_site
from flowsafe.errors import ConfigError, VerificationError
from flowsafe.keys import escrow, fingerprint, sheet, users
from flowsafe.keys.credentials import Credential, Decrypted, decrypt_all
from flowsafe.keys.source import read_key_file
from flowsafe.mariadb.connection import DbTarget, connect
from flowsafe.restic import Restic
from flowsafe.restore.database import private_copy
from flowsafe.secret import Secret, write_private
from flowsafe.session import locked_site
from flowsafe.sites import open_site, repository


@dataclass(frozen=True)
class KeySource:
    """Where a command gets the master key: exactly one of these."""

    key_file: Path | None = None
    age_identity: Path | None = None
    shares: Path | None = None
    escrow_passphrase: Secret | None = None


def load_key(source: KeySource, restic: Restic, site: str) -> Secret:
    """The master key from a key file, the escrow (age identity or passphrase) or shares."""
    given = [x for x in (source.key_file, source.age_identity, source.shares,
                         source.escrow_passphrase) if x is not None]
    if len(given) != 1:
        raise ConfigError("this needs the master key from exactly one of --key-file, "
                          "--age-identity, --escrow-passphrase-file or --shares")
    if source.key_file is not None:
        return read_key_file(source.key_file)
    if source.shares is not None:
        try:
            lines = source.shares.read_text().splitlines()
        except OSError as exc:
            raise ConfigError(f"cannot read {source.shares}: {exc.strerror}") from None
        return escrow.combine(lines)
    return escrow.open_escrow(restic, site, source.age_identity, source.escrow_passphrase)


@contextmanager
def site_database(config: Config, site_name: str | None, snapshot: str | None,
                  trust: TrustOptions, progress: ProgressFn
                  ) -> Iterator[tuple[str, Restic, DbTarget]]:
    """The live database, or a snapshot's loaded into a private MariaDB (stopped after); a
    site that is not installed here (a config only attached to its repository) is read
    from its newest snapshot."""
    site, restic = site_repository(config, site_name)
    if snapshot is None and site not in config.sites:
        snapshot = "latest"
    if snapshot is None:
        yield site, restic, open_site(config, site).database
        return
    snap = resolve(restic, site, snapshot)
    manifest = read_manifest(restic, snap, site, trust_for(config, site, trust)).manifest
    with private_copy(restic, snap, staging_path(snap, site), manifest, config.state_dir,
                      progress) as target:
        yield site, restic, target


@dataclass(frozen=True)
class KeyReport:
    """What a key command found: fingerprint verdict and credentials that decrypt."""

    site: str
    fingerprint_known: bool
    fingerprint_matches: bool | None
    credentials: int
    decrypted: int
    failed_ids: list[int]
    escrow_record: str | None = None
    shown_key: Secret | None = None

    @property
    def ok(self) -> bool:
        return self.fingerprint_matches is not False and not self.failed_ids


def check_key(site: str, restic: Restic, target: DbTarget, key: Secret) -> KeyReport:
    """A key against the site's escrowed fingerprint and every credential in ``target``."""
    known = escrow.known_fingerprint(restic, site)
    with connect(target) as conn:
        found = decrypt_all(conn, key)
    return KeyReport(site, known is not None,
                     fingerprint.matches(known, key) if known else None,
                     found.total, len(found.credentials), found.failed)


def run_unwrap(config: Config, site_name: str | None, email: str, password: Secret, *,
               snapshot: str | None, show: bool, recipients: list[str],
               passphrase: Secret | None, progress: ProgressFn,
               trust: TrustOptions | None = None) -> KeyReport:
    """Unwrap the key with an account's password; escrow it (and/or show it)."""
    if not show and not recipients and passphrase is None:
        raise ConfigError("say where the key goes: --age-recipient or --passphrase-file to "
                          "escrow it in the repository, or --show to print it once")
    with site_database(config, site_name, snapshot, trust or TrustOptions(), progress) as (
            site, restic, target):
        with connect(target) as conn:
            key = users.unwrap(users.find(conn, email), password)
        report = check_key(site, restic, target, key)
    record = None
    if recipients or passphrase is not None:
        record, _ = escrow.save(restic, site, escrow.seal(key, recipients, passphrase), key)
    return KeyReport(report.site, report.fingerprint_known, report.fingerprint_matches,
                     report.credentials, report.decrypted, report.failed_ids, record,
                     key if show else None)


def run_escrow(config: Config, site_name: str | None, source: KeySource,
               recipients: list[str], passphrase: Secret | None) -> str:
    """Seal a known key with age into the repository; returns the record id."""
    site, restic = site_repository(config, site_name)
    key = load_key(source, restic, site)
    record, _ = escrow.save(restic, site, escrow.seal(key, recipients, passphrase), key)
    return record


def run_shares(config: Config, site_name: str | None, source: KeySource, threshold: int,
               count: int) -> list[str]:
    """SLIP-39 mnemonics of the key (printed, never stored)."""
    site, restic = site_repository(config, site_name)
    return escrow.split(load_key(source, restic, site), threshold, count)


def run_verify(config: Config, site_name: str | None, source: KeySource,
               snapshot: str | None, progress: ProgressFn,
               trust: TrustOptions | None = None) -> KeyReport:
    """Check a candidate key against the fingerprint and every stored credential."""
    with site_database(config, site_name, snapshot, trust or TrustOptions(), progress) as (
            site, restic, target):
        return check_key(site, restic, target, load_key(source, restic, site))


@dataclass(frozen=True)
class ExportResult:
    """What went into the export, and what could not be decrypted."""

    path: Path
    exported: int
    failed_ids: list[int]


def _kdbx(path: Path, found: list[Credential], passphrase: Secret) -> None:
    from pykeepass import create_database

    database = create_database(str(path), password=passphrase.reveal())
    groups = {}
    for cred in found:
        client = cred.client or "(no client)"
        if client not in groups:
            groups[client] = database.add_group(database.root_group, client)
        otp = f"otpauth://totp/{cred.name}?secret={cred.otp_secret}" if cred.otp_secret else None
        database.add_entry(groups[client], cred.name or "(no name)", cred.username,
                           cred.password, url=cred.uri or None, notes=cred.notes or None,
                           otp=otp, force_creation=True)
    database.save()


def _csv(found: list[Credential]) -> bytes:
    text = io.StringIO()
    writer = csv.writer(text)
    writer.writerow(["client", "name", "uri", "username", "password", "otp_secret", "notes"])
    for c in found:
        writer.writerow([c.client, c.name, c.uri, c.username, c.password, c.otp_secret,
                         c.notes])
    return text.getvalue().encode()


def run_export(config: Config, site_name: str | None, source: KeySource, fmt: str, out: Path,
               *, passphrase: Secret | None, recipients: list[str], snapshot: str | None,
               progress: ProgressFn, trust: TrustOptions | None = None) -> ExportResult:
    """Every credential that decrypts, into a KeePass file or an age-encrypted CSV."""
    if out.exists():
        raise ConfigError(f"{out} already exists: choose a new file")
    if fmt == "kdbx" and passphrase is None:
        raise ConfigError("a KeePass export needs a new passphrase: --passphrase-file")
    with site_database(config, site_name, snapshot, trust or TrustOptions(), progress) as (
            site, restic, target):
        key = load_key(source, restic, site)
        with connect(target) as conn:
            found: Decrypted = decrypt_all(conn, key)
    pending = out.with_name(f".{out.name}.partial")
    old_mask = os.umask(0o077)
    try:
        if fmt == "kdbx":
            assert passphrase is not None
            _kdbx(pending, found.credentials, passphrase)
        else:
            write_private(pending, escrow.seal(Secret(_csv(found.credentials).decode()),
                                               recipients, passphrase))
        os.chmod(pending, 0o600)
        os.replace(pending, out)
    finally:
        os.umask(old_mask)
        pending.unlink(missing_ok=True)
    return ExportResult(out, len(found.credentials), found.failed)


@dataclass(frozen=True)
class RewrapResult:
    """Who got a new password, and the backup taken first."""

    email: str
    safety_snapshot: str | None
    dry_run: bool


def run_rewrap(config: Config, site_name: str | None, email: str, source: KeySource,
               new_password: Secret, *, dry_run: bool, confirm: Callable[[str], bool],
               progress: ProgressFn) -> RewrapResult | None:
    """Set a new password for a user and wrap the key for it (after a pre-rewrap backup)."""
    if len(new_password.reveal()) < 8:
        raise ConfigError("the new password is shorter than 8 characters")
    with locked_site(config, site_name, "rewrap") as site:
        key = load_key(source, site.restic, site.name)
        with connect(site.database) as conn:
            account = users.find(conn, email)
        checked = check_key(site.name, site.restic, site.database, key)
        if checked.fingerprint_matches is False or (checked.credentials and not checked.decrypted):
            raise VerificationError("the given key is not this site's master key (it does not "
                                    "match the fingerprint or decrypt any credential): "
                                    "refusing to wrap it for a user")
        if dry_run or not confirm(account.email):
            return RewrapResult(account.email, None, True) if dry_run else None
        safety = backup_site(config, site, "pre-rewrap", progress).snapshot_id
        with connect(site.database) as conn:
            users.rewrap(conn, account, key, new_password)
        return RewrapResult(account.email, safety, False)


def run_sheet(config: Config, site_name: str | None, out: Path, *,
              repository_password: bool, source: KeySource | None) -> list[str]:
    """Write the recovery sheet (0600) of a configured site; returns its warnings (the
    caller repeats them and tells the admin to print and delete the file)."""
    if out.exists():
        raise ConfigError(f"{out} already exists: choose a new file")
    site, _ = select_site(config, site_name)
    restic = repository(config, config.sites[site].repository)
    key = load_key(source, restic, site) if source is not None else None
    content = sheet.build(config, site, created=datetime.now().astimezone(), key=key,
                          with_passwords=repository_password)
    from flowsafe.keys.sheet_pdf import write_sheet  # reportlab, qrcode: for a sheet only

    write_sheet(out, content)
    return content.warnings
