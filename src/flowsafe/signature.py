"""Snapshot signatures: an HMAC-SHA256 of the manifest, made with a per-site key that is
not in the repository.

Anyone holding the repository password can add or rewrite snapshots, so a restore
trusts a snapshot only when its manifest carries a valid signature (tag
``sig:<key id>:<mac>``) by a key it knows: the site's key file beside the config
(0600, made by ``flowsafe init`` or the first backup), a key file given on the
command line, or the key escrowed with the master key (``flowsafe key escrow``,
the recovery sheet). The manifest lists every dump chunk's SHA-256, so the
signature covers the whole database dump. ``--trust-unsigned`` accepts a
snapshot without a valid signature and says so.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from flowsafe.errors import ConfigError, VerificationError
from flowsafe.secret import Secret, private_dirs, write_private

log = logging.getLogger(__name__)

TAG = "sig"
KEY_BYTES = 16  # 128-bit HMAC key: 32 hex characters, fits beside the master key in shares
_CONTEXT = b"flowsafe manifest v1\n"


def key_id(key: bytes) -> str:
    """A short public name for a key (not a secret: it cannot be turned back into it)."""
    return hashlib.sha256(b"flowsafe signing key id\n" + key).hexdigest()[:12]


def parse_key(text: str, where: str) -> bytes:
    """A key from its 32 hex characters."""
    value = text.strip()
    try:
        key = bytes.fromhex(value)
    except ValueError:
        key = b""
    if len(key) != KEY_BYTES:
        raise ConfigError(f"{where} does not hold a flowsafe signing key ({KEY_BYTES * 2} hex "
                          "characters)")
    return key


def read_key(path: Path) -> bytes:
    """The key in a 0600 file."""
    try:
        mode = path.stat().st_mode
        text = path.read_text(encoding="ascii")
    except FileNotFoundError:
        raise ConfigError(f"signing key file {path} does not exist") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read the signing key file {path}: {exc}") from None
    if mode & 0o077:
        raise ConfigError(f"signing key file {path} is readable by other users: chmod 600 {path}")
    return parse_key(text, f"signing key file {path}")


def ensure_key(path: Path) -> tuple[bytes, bool]:
    """The site's key, made (0600) if there is none yet; returns (key, made now)."""
    if path.exists():
        return read_key(path), False
    key = secrets.token_bytes(KEY_BYTES)
    private_dirs(path.parent)
    write_private(path, key.hex() + "\n")
    log.warning("made a new snapshot signing key %s (id %s): escrow it with `flowsafe key "
                "escrow` so a new server can check this site's snapshots", path, key_id(key))
    return key, True


def sign(key: bytes, manifest: bytes) -> str:
    """The snapshot tag that signs ``manifest`` (its exact bytes)."""
    mac = hmac.new(key, _CONTEXT + manifest, hashlib.sha256).hexdigest()
    return f"{TAG}:{key_id(key)}:{mac}"


@dataclass(frozen=True)
class Trust:
    """The keys a restore accepts, and whether an unsigned snapshot may pass."""

    keys: Mapping[str, Secret] = field(default_factory=dict)  # key id -> key as hex
    allow_unsigned: bool = False

    @classmethod
    def of(cls, keys: list[bytes], allow_unsigned: bool = False) -> Trust:
        return cls({key_id(k): Secret(k.hex()) for k in keys}, allow_unsigned)


def verify(tags: list[str], manifest: bytes, trust: Trust, where: str) -> str:
    """Check the snapshot's signature; returns how it is trusted (for the plan and reports).

    Raises ``VerificationError`` for an unsigned or wrongly signed snapshot unless
    ``trust.allow_unsigned``.
    """
    found = [t for t in tags if t.startswith(f"{TAG}:")]
    problem: str
    if not found:
        problem = f"{where} is not signed"
    else:
        _, kid, mac = [*found[0].split(":", 2), "", ""][:3]
        key = trust.keys.get(kid)
        if key is None:
            problem = (f"{where} is signed by key {kid}, which this machine does not have "
                       "(give --signing-key-file FILE: the site's recovery sheet prints the "
                       "key)")
        else:
            expected = sign(bytes.fromhex(key.reveal()), manifest).split(":", 2)[2]
            if hmac.compare_digest(expected, mac):
                return f"signed by key {kid}"
            problem = (f"{where}: its manifest does not match its signature (key {kid}): the "
                       "snapshot was altered after it was made")
    if trust.allow_unsigned:
        log.warning("%s; accepted because of --trust-unsigned", problem)
        return f"NOT verified ({problem}); accepted with --trust-unsigned"
    raise VerificationError(f"{problem}: refusing to restore from it (anyone with the "
                            "repository password can write snapshots); pass --trust-unsigned "
                            "if you know where it came from")


def keys_in_files(paths: list[Path]) -> list[bytes]:
    """The keys in each existing file of ``paths``."""
    return [read_key(p) for p in paths if p.exists()]


def default_key_file(config_dir: Path, site: str) -> Path:
    """Where a site's key lives when the config names none: beside the config."""
    return config_dir / f"{site}.signing-key"

