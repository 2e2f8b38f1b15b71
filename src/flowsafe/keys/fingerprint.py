"""Salted, slow fingerprints of the master key: they say whether a candidate key is the
right one without revealing it (stored in manifests and escrow records)."""

from __future__ import annotations

import hashlib
import hmac
import os

from flowsafe.secret import Secret

VERSION = "v1"
ITERATIONS = 200_000


def _digest(key: Secret, salt: bytes) -> str:
    return hashlib.pbkdf2_hmac("sha256", key.reveal().encode(), salt, ITERATIONS).hex()


def make(key: Secret, salt: bytes | None = None) -> str:
    """``v1:<salt hex>:<PBKDF2-SHA256 hex>`` of the key."""
    salt = salt if salt is not None else os.urandom(16)
    return f"{VERSION}:{salt.hex()}:{_digest(key, salt)}"


def matches(fingerprint: str, key: Secret) -> bool:
    """Whether ``key`` is the key the fingerprint was made from."""
    try:
        version, salt, digest = fingerprint.split(":")
        raw = bytes.fromhex(salt)
    except ValueError:
        return False
    return version == VERSION and hmac.compare_digest(_digest(key, raw), digest)
