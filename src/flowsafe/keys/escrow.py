"""Escrow of the master key: sealed with age into the repository (so a new machine finds
it), or split into SLIP-39 mnemonic shares; and opening it again.

An escrow record is a one-file restic snapshot tagged ``flowsafe-key``,
``site:<name>`` and ``fingerprint:<salted fingerprint>``, holding the age ciphertext.
"""

from __future__ import annotations

import re
import socket
from pathlib import Path

import pyrage
import shamir_mnemonic
from pyrage import passphrase as age_passphrase
from pyrage import x25519
from shamir_mnemonic.share import Share

from flowsafe.errors import ConfigError
from flowsafe.keys import fingerprint
from flowsafe.restic import Restic, Snapshot
from flowsafe.secret import Secret

KEY_TAG = "flowsafe-key"


def seal(key: Secret, recipients: list[str], passphrase: Secret | None) -> bytes:
    """Encrypt the key with age, for public keys or (exclusively) a passphrase."""
    data = key.reveal().encode()
    if passphrase is not None:
        if recipients:
            raise ConfigError("age seals for recipients or for a passphrase, not both")
        return bytes(age_passphrase.encrypt(data, passphrase.reveal()))
    if not recipients:
        raise ConfigError("give at least one --age-recipient (age1...) or --passphrase-file")
    try:
        keys = [x25519.Recipient.from_str(r.strip()) for r in recipients]
    except pyrage.RecipientError:
        raise ConfigError("an --age-recipient is not an age public key (age1...)") from None
    return bytes(pyrage.encrypt(data, keys))


def _identities(path: Path) -> list[x25519.Identity]:
    try:
        lines = path.read_text().splitlines()
    except OSError as exc:
        raise ConfigError(f"cannot read the age identity {path}: {exc.strerror}") from None
    found = []
    for line in lines:
        if line.strip().startswith("AGE-SECRET-KEY-"):
            try:
                found.append(x25519.Identity.from_str(line.strip()))
            except pyrage.IdentityError:
                raise ConfigError(f"{path} holds a malformed age identity") from None
    if not found:
        raise ConfigError(f"{path} holds no age identity (AGE-SECRET-KEY-...)")
    return found


def unseal(sealed: bytes, identity: Path | None, passphrase: Secret | None) -> Secret:
    """Open an escrowed key with an age identity file or the passphrase."""
    try:
        if passphrase is not None:
            data = age_passphrase.decrypt(sealed, passphrase.reveal())
        elif identity is not None:
            data = pyrage.decrypt(sealed, _identities(identity))
        else:
            raise ConfigError("give --age-identity (or --passphrase-file) to open the escrow")
    except pyrage.DecryptError:
        what = "passphrase" if passphrase is not None else f"age identity in {identity}"
        raise ConfigError(f"the {what} does not open the escrowed key (it was sealed for "
                          "other recipients)") from None
    return Secret(bytes(data).decode("ascii"))


def save(restic: Restic, site: str, sealed: bytes, key: Secret) -> tuple[str, str]:
    """Store the sealed key in the repository; returns (record id, fingerprint)."""
    fp = fingerprint.make(key)
    record = restic.backup_bytes(sealed, filename=f"flowsafe-master-key-{site}.age",
                                 tags=[KEY_TAG, f"site:{site}", f"fingerprint:{fp}"],
                                 host=socket.gethostname())
    return record, fp


def records(restic: Restic, site: str) -> list[Snapshot]:
    """The site's escrow records, oldest first."""
    return restic.snapshots([KEY_TAG, f"site:{site}"])


def known_fingerprint(restic: Restic, site: str) -> str | None:
    """The fingerprint of the newest escrowed key, if the site has one."""
    found = records(restic, site)
    return found[-1].tag_value("fingerprint") if found else None


def open_escrow(restic: Restic, site: str, identity: Path | None,
                passphrase: Secret | None) -> Secret:
    """The escrowed key: the newest record that this identity or passphrase opens."""
    found = records(restic, site)
    if not found:
        raise ConfigError(f"site '{site}' has no escrowed key in the repository: run "
                          "`flowsafe key unwrap` or `flowsafe key escrow` first")
    refusal: ConfigError | None = None
    for record in reversed(found):
        sealed = restic.dump(record.id, f"/flowsafe-master-key-{site}.age")
        try:
            return unseal(sealed, identity, passphrase)
        except ConfigError as exc:
            refusal = exc
    assert refusal is not None
    raise refusal


def split(key: Secret, threshold: int, shares: int) -> list[str]:
    """SLIP-39 mnemonics: any ``threshold`` of ``shares`` recover the key."""
    if not 1 <= threshold <= shares <= 16:
        raise ConfigError("shares must be K-of-N with 1 <= K <= N <= 16, e.g. 2-of-3")
    groups = shamir_mnemonic.generate_mnemonics(1, [(threshold, shares)],
                                                key.reveal().encode())
    return list(groups[0])


def _enough(mnemonics: list[str]) -> list[str]:
    """As many distinct shares as the threshold asks for, so that a file of every printed
    share works too (a set that does not belong together is left for combining to refuse)."""
    try:
        shares = [Share.from_mnemonic(m) for m in mnemonics]
    except shamir_mnemonic.MnemonicError:
        return mnemonics
    if len({s.group_parameters() for s in shares}) != 1:
        return mnemonics
    distinct = {s.index: m for s, m in zip(shares, mnemonics, strict=True)}
    return list(distinct.values())[:shares[0].member_threshold]


def combine(lines: list[str]) -> Secret:
    """The key from SLIP-39 mnemonics, one a line; blank lines, ``#`` comment lines and a
    ``Share N:`` prefix (older ``--print-shares`` output) are ignored."""
    mnemonics = [re.sub(r"^share\s*\d+\s*:\s*", "", line.strip(), flags=re.IGNORECASE)
                 for line in lines if line.strip() and not line.lstrip().startswith("#")]
    try:
        data = shamir_mnemonic.combine_mnemonics(_enough(mnemonics))
    except shamir_mnemonic.MnemonicError as exc:
        raise ConfigError(f"the shares do not recover the key: {exc}") from None
    try:
        return Secret(data.decode("ascii"))
    except UnicodeDecodeError:
        raise ConfigError("the shares recover something that is not a master key") from None
