"""The master key end to end through the CLI: unwrap, escrow, verify, shares, rewrap,
credentials export and the recovery sheet; checked against real PHP 8.2 (hash_pbkdf2,
openssl_*, password_*), real restic repositories, real age and KeePass files."""

from __future__ import annotations

import base64
import csv
import io
import json
from collections import Counter
from pathlib import Path
from typing import Any

import pyrage
import pytest
from pykeepass import PyKeePass
from pyrage import x25519

from flowsafe.execute import run
from flowsafe.itflow.crypto import decrypt_field, encrypt_field, wrap_master_key
from flowsafe.mariadb.connection import connect
from flowsafe.mariadb.instance import PrivateServer
from flowsafe.sample import SampleSite, build_site
from flowsafe.secret import write_private
from tests.cli import SiteUnderTest, watch_processes

OTHER_KEY = "ZZotherKEY123456"
NEW_PASSWORD = "n3w Pässwörd for-rewrap!"

# --- PHP, with every input on stdin (never in argv) -------------------------------------

_PRELUDE = "$in = json_decode(file_get_contents('php://stdin'), true);"
PHP_WRAP = """
$key = hash_pbkdf2('sha256', $in['password'], $in['salt'], 100000, 16);
$out = ['wrapped' => $in['salt'] . $in['iv']
            . openssl_encrypt($in['master'], 'aes-128-cbc', $key, 0, $in['iv']),
        'hash' => password_hash($in['password'], PASSWORD_DEFAULT)];
"""
PHP_CHECK = """
$w = $in['wrapped'];
$key = hash_pbkdf2('sha256', $in['password'], substr($w, 0, 16), 100000, 16);
$out = ['verify' => password_verify($in['password'], $in['hash']),
        'master' => openssl_decrypt(substr($w, 32), 'aes-128-cbc', $key, 0, substr($w, 16, 16))];
"""


def run_php(code: str, inputs: dict[str, Any]) -> Any:
    """Run PHP ``code`` with ``$in`` decoded from JSON on stdin; ``$out`` comes back as JSON."""
    script = f"{_PRELUDE} {code} echo json_encode($out);"
    result = run(["php", "-r", script], input=json.dumps(inputs).encode())
    return json.loads(result.stdout)


# --- one sample site per test -----------------------------------------------------------


class Site(SiteUnderTest):
    """A sample site with flowsafe initialised on it, plus the files a test writes."""

    def __init__(self, sample: SampleSite, server: PrivateServer, tmp: Path) -> None:
        super().__init__(sample, server, tmp)
        self.written: list[Path] = []
        self.key = self.secret_file("master.key", sample.master_key)

    def secret_file(self, name: str, text: str) -> Path:
        """A 0600 file the test itself wrote (key, password, identity...)."""
        path = self.tmp / "secrets" / name
        write_private(path, text + "\n")
        self.written.append(path)
        return path

    def agent(self) -> tuple[str, str]:
        email, password = sorted(self.sample.users.items())[0]
        return email, password

    def sql(self, statement: str, params: tuple[object, ...] = ()) -> list[tuple[Any, ...]]:
        with connect(self.target) as conn, conn.cursor() as cur:
            cur.execute(statement, params)
            return list(cur.fetchall())

    def user_row(self, email: str) -> tuple[str, str]:
        rows = self.sql("SELECT user_password, user_specific_encryption_ciphertext FROM users "
                        "WHERE user_email = %s", (email,))
        assert len(rows) == 1
        return str(rows[0][0]), str(rows[0][1])

    def plain_credentials(self) -> list[tuple[int, str, str]]:
        """(id, username, password) of every stored credential, decrypted here."""
        rows = self.sql("SELECT credential_id, credential_username, credential_password "
                        "FROM credentials ORDER BY credential_id")
        key = self.sample.master_key
        return [(int(r[0]), decrypt_field(_text(r[1]), key), decrypt_field(_text(r[2]), key))
                for r in rows]


def _text(value: object) -> str:
    if value is None:
        return ""
    return value.decode("ascii") if isinstance(value, bytes) else str(value)


@pytest.fixture
def site(mariadb_server: PrivateServer, tmp_path: Path) -> Site:
    database = f"keys_{tmp_path.name[-12:].replace('-', '_')}"
    sample = build_site(tmp_path / "www" / "itflow", mariadb_server.target(),
                        database=database, seed=17)
    made = Site(sample, mariadb_server, tmp_path)
    made.ok("init", "--site", str(sample.path), "--name", "itflow", "--repo",
            str(tmp_path / "repo"), "--state-dir", str(tmp_path / "state"), "--db-socket",
            mariadb_server.socket)
    return made


def _identity(site: Site, name: str = "age.identity") -> tuple[Path, str]:
    """A fresh age identity in a 0600 file, and its recipient."""
    identity = x25519.Identity.generate()
    return site.secret_file(name, str(identity)), str(identity.to_public())


def _fix_user(site: Site, email: str, password: str) -> None:
    """Wrap the master key for ``password`` with PHP, as ITFlow does, into the users row."""
    made = run_php(PHP_WRAP, {"master": site.sample.master_key, "password": password,
                              "salt": "PhPsalt012345678", "iv": "PhPiv9876543210x"})
    assert str(made["hash"]).startswith("$2y$")
    site.sql("UPDATE users SET user_password = %s, user_specific_encryption_ciphertext = %s "
             "WHERE user_email = %s", (made["hash"], made["wrapped"], email))


# --- 1. PHP vectors: unwrap and rewrap --------------------------------------------------


def test_php_wrapped_user_unwraps_and_rewrap_is_read_by_php(site: Site) -> None:
    email, _ = site.agent()
    password = "php wrapped 'pässword' \\ 🔑"
    _fix_user(site, email, password)
    pw_file = site.secret_file("user.pw", password)
    shown = site.ok("key", "unwrap", "--user", email.upper(), "--password-file", str(pw_file),
                    "--show")
    assert f"Master key: {site.sample.master_key}" in shown.stdout
    total = len(site.plain_credentials())
    assert f"{total} of {total} stored credentials decrypt" in shown.stdout

    new_file = site.secret_file("new.pw", NEW_PASSWORD)
    before = site.user_row(email)
    wrong = site.secret_file("wrong.key", OTHER_KEY)
    refused = site.run("key", "rewrap", "--user", email, "--key-file", str(wrong),
                       "--new-password-file", str(new_file), "--yes")
    assert refused.returncode == 3 and "not this site's master key" in refused.stderr
    short = site.secret_file("short.pw", "short")
    refused = site.run("key", "rewrap", "--user", email, "--key-file", str(site.key),
                       "--new-password-file", str(short), "--yes")
    assert refused.returncode == 2 and "shorter than 8" in refused.stderr
    dry = site.ok("key", "rewrap", "--user", email, "--key-file", str(site.key),
                  "--new-password-file", str(new_file), "--dry-run")
    assert "nothing changed" in dry.stdout
    assert site.user_row(email) == before
    assert site.snapshots() == []

    done = site.ok("key", "rewrap", "--user", email, "--key-file", str(site.key),
                   "--new-password-file", str(new_file), "--yes")
    assert "can log in with the new password" in done.stdout
    hashed, wrapped = site.user_row(email)
    assert (hashed, wrapped) != before
    checked = run_php(PHP_CHECK, {"password": NEW_PASSWORD, "hash": hashed, "wrapped": wrapped})
    assert checked == {"verify": True, "master": site.sample.master_key}
    old = run_php(PHP_CHECK, {"password": password, "hash": hashed, "wrapped": wrapped})
    assert old["verify"] is False and old["master"] != site.sample.master_key
    snaps = site.snapshots()
    assert [row["reason"] for row in snaps] == ["pre-rewrap"]
    assert f"pre-rewrap backup: {snaps[0]['short_id']}" in done.stdout

    # The new password works in flowsafe too; the old one is now wrong.
    again = site.ok("key", "unwrap", "--user", email, "--password-file", str(new_file),
                    "--show")
    assert f"Master key: {site.sample.master_key}" in again.stdout
    stale = site.run("key", "unwrap", "--user", email, "--password-file", str(pw_file),
                     "--show")
    assert stale.returncode == 2 and "wrong password" in stale.stderr


# --- 2. escrow: age identity, passphrase, fingerprint in manifests, drill -----------------


def test_unwrap_escrow_verify_backup_and_drill(site: Site) -> None:
    email, password = site.agent()
    pw_file = site.secret_file("user.pw", password)
    identity, recipient = _identity(site)
    assert identity.stat().st_mode & 0o777 == 0o600
    done = site.ok("key", "unwrap", "--user", email, "--password-file", str(pw_file),
                   "--age-recipient", recipient)
    assert "Escrowed in the repository (record " in done.stdout
    assert "its fingerprint is recorded from now on" in done.stdout
    assert "no fingerprint known" not in done.stdout  # the outcome once, not its opposite
    assert site.sample.master_key not in done.stdout + done.stderr
    assert site.snapshots() == []  # escrow records are not backups

    total = len(site.plain_credentials())
    verify = site.ok("key", "verify", "--age-identity", str(identity))
    assert "the key matches the escrowed key's fingerprint" in verify.stdout
    assert f"{total} of {total} stored credentials decrypt" in verify.stdout
    as_json = json.loads(site.ok("key", "verify", "--age-identity", str(identity),
                                 "--json").stdout)
    assert as_json["ok"] is True and as_json["fingerprint_matches"] is True
    assert as_json["decrypted"] == total and as_json["failed_ids"] == []

    other, _ = _identity(site, "other.identity")
    wrong = site.run("key", "verify", "--age-identity", str(other))
    assert wrong.returncode == 2 and "does not open" in wrong.stderr

    site.ok("backup")
    snap = site.snapshots()[-1]
    staging = site.tmp / "state" / "staging" / "itflow"
    raw = site.restic("dump", snap["id"], f"{staging}/manifest.json")
    manifest = json.loads(raw)
    assert str(manifest["master_key_fingerprint"]).startswith("v1:")
    assert site.sample.master_key not in raw

    drilled = site.run("drill", "--json", "--age-identity", str(identity))
    assert drilled.returncode == 0, drilled.stdout + drilled.stderr
    checks = {c["name"]: c for c in json.loads(drilled.stdout)[0]["checks"]}
    assert checks["credentials decrypt"]["result"] == "ok"
    assert f"{total} credentials decrypt" in checks["credentials decrypt"]["detail"]

    # Passphrase mode: a new record sealed with a passphrase, opened with it only.
    phrase = site.secret_file("escrow.pass", "correct horse battery staple")
    site.ok("key", "unwrap", "--user", email, "--password-file", str(pw_file),
            "--passphrase-file", str(phrase))
    verify = site.ok("key", "verify", "--escrow-passphrase-file", str(phrase))
    assert "matches" in verify.stdout and f"{total} of {total}" in verify.stdout
    bad = site.secret_file("bad.pass", "incorrect horse")
    wrong = site.run("key", "verify", "--escrow-passphrase-file", str(bad))
    assert wrong.returncode == 2 and "does not open" in wrong.stderr
    # The older age record still opens with the identity, past the newer passphrase one.
    site.ok("key", "verify", "--age-identity", str(identity))
    missing = site.run("key", "unwrap", "--user", email, "--password-file",
                       str(site.tmp / "no-such-file"), "--show")
    assert missing.returncode == 2 and "cannot read the secret file" in missing.stderr


# --- 3. bad inputs ---------------------------------------------------------------------


def test_unwrap_bad_users_passwords_and_destinations(site: Site) -> None:
    email, password = site.agent()
    pw_file = site.secret_file("user.pw", password)
    unknown = site.run("key", "unwrap", "--user", "nobody@example.invalid", "--password-file",
                       str(pw_file), "--show")
    assert unknown.returncode == 2 and "no ITFlow user" in unknown.stderr
    portal = site.run("key", "unwrap", "--user", site.sample.portal_users[0],
                      "--password-file", str(pw_file), "--show")
    assert portal.returncode == 2 and "no wrapped master key" in portal.stderr
    wrong_file = site.secret_file("wrong.pw", password + "x")
    wrong = site.run("key", "unwrap", "--user", email, "--password-file", str(wrong_file),
                     "--show")
    assert wrong.returncode == 2 and "wrong password" in wrong.stderr
    nowhere = site.run("key", "unwrap", "--user", email, "--password-file", str(pw_file))
    assert nowhere.returncode == 2
    assert "--age-recipient" in nowhere.stderr and "--show" in nowhere.stderr
    not_age = site.run("key", "unwrap", "--user", email, "--password-file", str(pw_file),
                       "--age-recipient", "age1notakey")
    assert not_age.returncode == 2 and "not an age public key" in not_age.stderr
    assert site.sample.master_key not in "".join(
        d.stdout + d.stderr for d in (unknown, portal, wrong, nowhere, not_age))


def test_unwrap_corrupt_ciphertext_names_the_damage(site: Site) -> None:
    email, password = site.agent()
    pw_file = site.secret_file("user.pw", password)
    good = wrap_master_key(site.sample.master_key, password, "S" * 16, "I" * 16)
    body = bytearray(base64.b64decode(good[32:]))
    body[-1] ^= 0x55
    cases = {
        "not valid base64": good[:32] + "!!not*base64!!",
        "20 bytes, not a multiple of 16": good[:32] + base64.b64encode(b"y" * 20).decode(),
        "bad padding": good[:32] + base64.b64encode(bytes(body)).decode(),
        "too short": good[:32],
    }
    for message, wrapped in cases.items():
        site.sql("UPDATE users SET user_specific_encryption_ciphertext = %s "
                 "WHERE user_email = %s", (wrapped, email))
        done = site.run("key", "unwrap", "--user", email, "--password-file", str(pw_file),
                        "--show")
        assert done.returncode == 1, (message, done.stderr)
        assert "wrapped master key" in done.stderr and message in done.stderr, done.stderr
        assert "Master key:" not in done.stdout


def test_verify_a_different_key(site: Site) -> None:
    _, recipient = _identity(site)
    site.ok("key", "escrow", "--key-file", str(site.key), "--age-recipient", recipient)
    wrong = site.secret_file("wrong.key", OTHER_KEY)
    total = len(site.plain_credentials())
    done = site.run("key", "verify", "--key-file", str(wrong))
    assert done.returncode == 3, done.stderr
    assert "does NOT match" in done.stdout
    assert f"0 of {total} stored credentials decrypt" in done.stdout
    right = site.ok("key", "verify", "--key-file", str(site.key))
    assert "the key matches" in right.stdout
    loose = site.tmp / "loose.key"
    loose.write_text(site.sample.master_key)
    loose.chmod(0o644)
    site.written.append(loose)
    done = site.run("key", "verify", "--key-file", str(loose))
    assert done.returncode == 2 and "readable by other users" in done.stderr
    both = site.run("key", "verify", "--key-file", str(site.key), "--shares", str(wrong))
    assert both.returncode == 2 and "exactly one of" in both.stderr


def _shares(site: Site, terminal: bool = False) -> tuple[list[str], str]:
    """The shares ``--print-shares 2-of-3`` prints, and its whole output (``terminal``: as
    on an 80-column terminal)."""
    env = {"COLUMNS": "80", "TTY_COMPATIBLE": "1"} if terminal else None
    done = site.run("key", "escrow", "--key-file", str(site.key), "--print-shares", "2-of-3",
                    env=env)
    assert done.returncode == 0, done.stderr
    found = [line for line in done.stdout.splitlines() if not line.startswith("#")]
    assert len(found) == 3 and len(set(found)) == 3
    assert "# Any 2 of these 3 shares recover the key" in done.stdout
    assert "# Share 2 of 3:" in done.stdout
    return found, done.stdout


def test_shares_recover_the_key_only_when_enough_and_consistent(site: Site) -> None:
    shares, printed = _shares(site, terminal=True)  # never wrapped, even on a terminal
    assert all(len(share.split()) >= 20 for share in shares)
    total = len(site.plain_credentials())
    saved = site.secret_file("printed.txt", printed)  # the output as saved, passed back
    done = site.ok("key", "verify", "--shares", str(saved))
    assert f"{total} of {total} stored credentials decrypt" in done.stdout
    old_style = site.secret_file("old.txt", "\n".join(f"Share {n}: {m}"
                                                      for n, m in enumerate(shares[:2], 1)))
    done = site.ok("key", "verify", "--shares", str(old_style))
    assert f"{total} of {total} stored credentials decrypt" in done.stdout
    for pair in ((0, 1), (1, 2), (2, 0)):
        path = site.secret_file(f"shares-{pair[0]}{pair[1]}.txt",
                                "\n".join(shares[i] for i in pair))
        done = site.ok("key", "verify", "--shares", str(path))
        assert f"{total} of {total} stored credentials decrypt" in done.stdout
    one = site.secret_file("one.txt", shares[0])
    done = site.run("key", "verify", "--shares", str(one))
    assert done.returncode == 2 and "the shares do not recover the key" in done.stderr
    other, _ = _shares(site)
    mixed = site.secret_file("mixed.txt", shares[0] + "\n" + other[1])
    done = site.run("key", "verify", "--shares", str(mixed))
    assert done.returncode == 2 and "the shares do not recover the key" in done.stderr
    bad = site.run("key", "escrow", "--key-file", str(site.key), "--print-shares", "3-of-2")
    assert bad.returncode == 2 and "K-of-N" in bad.stderr


# --- 4. credentials export -------------------------------------------------------------


def test_export_kdbx_holds_every_credential(site: Site) -> None:
    phrase = site.secret_file("kdbx.pass", "kee pass phrase 42")
    out = site.tmp / "out" / "creds.kdbx"
    out.parent.mkdir(mode=0o700)
    done = site.ok("credentials", "export", "--format", "kdbx", "--out", str(out),
                   "--key-file", str(site.key), "--passphrase-file", str(phrase))
    plain = site.plain_credentials()
    assert f"Exported {len(plain)} credentials" in done.stdout
    assert out.stat().st_mode & 0o777 == 0o600
    assert not list(out.parent.glob(".*partial"))
    kp = PyKeePass(str(out), password="kee pass phrase 42")
    entries = kp.entries
    assert len(entries) == len(plain)
    assert Counter((e.username or "", e.password or "") for e in entries) == Counter(
        (u, p) for _, u, p in plain)
    assert any(p for _, _, p in plain)
    again = site.run("credentials", "export", "--format", "kdbx", "--out", str(out),
                     "--key-file", str(site.key), "--passphrase-file", str(phrase))
    assert again.returncode == 2 and "already exists" in again.stderr


def _csv_rows(path: Path, identity: Path) -> list[dict[str, str]]:
    data = path.read_bytes()
    assert data.startswith(b"age-encryption.org")
    plain = pyrage.decrypt(data, [x25519.Identity.from_str(identity.read_text().strip())])
    return list(csv.DictReader(io.StringIO(bytes(plain).decode())))


def test_export_csv_is_age_ciphertext(site: Site) -> None:
    identity, recipient = _identity(site)
    out = site.tmp / "creds.csv.age"
    site.ok("credentials", "export", "--format", "csv", "--out", str(out), "--key-file",
            str(site.key), "--age-recipient", recipient)
    assert out.stat().st_mode & 0o777 == 0o600
    rows = _csv_rows(out, identity)
    plain = site.plain_credentials()
    assert len(rows) == len(plain)
    assert Counter((r["username"], r["password"]) for r in rows) == Counter(
        (u, p) for _, u, p in plain)
    assert site.sample.master_key.encode() not in out.read_bytes()


def test_export_with_rows_of_another_key(site: Site) -> None:
    plain = site.plain_credentials()
    victims = [cid for cid, _, _ in plain[:3]]
    for cid in victims:
        site.sql("UPDATE credentials SET credential_username = %s, credential_password = %s "
                 "WHERE credential_id = %s",
                 (encrypt_field("foreign", OTHER_KEY), encrypt_field("secret", OTHER_KEY), cid))
    identity, recipient = _identity(site)
    out = site.tmp / "partial.csv.age"
    done = site.run("credentials", "export", "--format", "csv", "--out", str(out),
                    "--key-file", str(site.key), "--age-recipient", recipient)
    assert done.returncode == 3, done.stderr
    assert "3 credentials did not decrypt" in done.stderr
    assert all(str(cid) in done.stderr for cid in victims)
    assert f"Exported {len(plain) - 3} credentials" in done.stdout
    rows = _csv_rows(out, identity)
    assert len(rows) == len(plain) - 3
    assert Counter((r["username"], r["password"]) for r in rows) == Counter(
        (u, p) for cid, u, p in plain if cid not in victims)


def test_export_from_a_snapshot(site: Site) -> None:
    plain = site.plain_credentials()
    site.ok("backup")
    site.sql("DELETE FROM credentials WHERE credential_id = %s", (plain[0][0],))
    identity, recipient = _identity(site)
    out = site.tmp / "snap.csv.age"
    site.ok("credentials", "export", "--format", "csv", "--out", str(out), "--key-file",
            str(site.key), "--age-recipient", recipient, "--snapshot", "latest")
    rows = _csv_rows(out, identity)
    assert len(rows) == len(plain)  # the snapshot's rows, not the live table's
    assert (plain[0][1], plain[0][2]) in {(r["username"], r["password"]) for r in rows}
    assert list((site.tmp / "state" / "tmp").glob("keys-*")) == []
    live = site.tmp / "live.csv.age"
    site.ok("credentials", "export", "--format", "csv", "--out", str(live), "--key-file",
            str(site.key), "--age-recipient", recipient)
    assert len(_csv_rows(live, identity)) == len(plain) - 1


def test_export_legacy_varbinary_column(site: Site) -> None:
    site.sql("ALTER TABLE credentials MODIFY credential_password VARBINARY(500)")
    types = site.sql("SELECT DATA_TYPE FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = %s "
                     "AND TABLE_NAME = 'credentials' AND COLUMN_NAME = 'credential_password'",
                     (site.sample.database,))
    assert types == [("varbinary",)]
    phrase = site.secret_file("kdbx.pass", "legacy pass phrase")
    out = site.tmp / "legacy.kdbx"
    site.ok("credentials", "export", "--out", str(out), "--key-file", str(site.key),
            "--passphrase-file", str(phrase))
    plain = site.plain_credentials()
    entries = PyKeePass(str(out), password="legacy pass phrase").entries
    assert Counter((e.username or "", e.password or "") for e in entries) == Counter(
        (u, p) for _, u, p in plain)


# --- 5. recovery sheet -----------------------------------------------------------------


def test_sheet_is_private_pdf(site: Site) -> None:
    out = site.tmp / "sheet.pdf"
    done = site.ok("key", "sheet", "--out", str(out), "--key-file", str(site.key))
    assert out.stat().st_mode & 0o777 == 0o600
    assert out.read_bytes().startswith(b"%PDF")
    assert "Print it" in done.stdout and "delete" in done.stdout and str(out) in done.stdout
    again = site.run("key", "sheet", "--out", str(out), "--key-file", str(site.key))
    assert again.returncode == 2 and "already exists" in again.stderr


# --- 6. secrets never leak -------------------------------------------------------------


def test_no_secret_in_argv_stderr_or_files(site: Site) -> None:
    email, password = site.agent()
    pw_file = site.secret_file("user.pw", password)
    new_file = site.secret_file("new.pw", NEW_PASSWORD)
    phrase = site.secret_file("kdbx.pass", "leak test phrase")
    _, recipient = _identity(site)
    secrets = [site.sample.master_key, password, NEW_PASSWORD]
    with watch_processes() as seen:
        runs = [
            site.run("--verbose", "key", "unwrap", "--user", email, "--password-file",
                     str(pw_file), "--age-recipient", recipient),
            site.run("--verbose", "credentials", "export", "--out", str(site.tmp / "x.kdbx"),
                     "--key-file", str(site.key), "--passphrase-file", str(phrase)),
            site.run("--verbose", "credentials", "export", "--format", "csv", "--out",
                     str(site.tmp / "x.csv.age"), "--key-file", str(site.key),
                     "--age-recipient", recipient),
            site.run("--verbose", "key", "rewrap", "--user", email, "--key-file",
                     str(site.key), "--new-password-file", str(new_file), "--yes"),
        ]
    for done in runs:
        assert done.returncode == 0, (done.args, done.stderr)
    assert any("restic" in p.argv and "backup" in p.argv for p in seen)  # the pre-rewrap one
    for secret in secrets:
        assert not any(secret in p.argv or secret in p.environ for p in seen)
        for done in runs:
            assert secret not in done.stderr
            assert secret not in done.stdout
    written = {path.resolve() for path in site.written}
    key = site.sample.master_key.encode()
    leaked = [path for path in site.tmp.rglob("*")
              if path.is_file() and not path.is_symlink() and path.resolve() not in written
              and key in path.read_bytes()]
    assert leaked == []


def test_exports_and_sheets_refuse_a_folder_every_user_can_list(site: Site) -> None:
    shared = site.tmp / "shared"
    shared.mkdir()
    shared.chmod(0o755)
    _, recipient = _identity(site)
    runs = {
        "the recovery sheet": ("key", "sheet", "--out", str(shared / "s.pdf"), "--key-file",
                               str(site.key)),
        "the credentials export": ("credentials", "export", "--format", "csv", "--out",
                                   str(shared / "c.csv.age"), "--key-file", str(site.key),
                                   "--age-recipient", recipient),
        "the archive": ("archive", "export", "latest", "--out", str(shared)),
    }
    for what, args in runs.items():
        done = site.run(*args)
        assert done.returncode == 2, (what, done.stderr)
        assert f"{what}: {shared} can be listed by every user" in done.stderr
        assert "--force" in done.stderr
    assert list(shared.iterdir()) == []
    forced = site.ok(*runs["the recovery sheet"], "--force")
    assert (shared / "s.pdf").stat().st_mode & 0o777 == 0o600, forced.stdout
