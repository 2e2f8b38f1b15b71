"""ITFlow's encryption formats, byte for byte (see ITFLOW-FACTS.md).

- A user's wrapped master key: ``salt(16) + iv(16) + base64(AES-128-CBC(master))``
  with the AES key = ``hash_pbkdf2('sha256', password, salt, 100000, 16)``, i.e.
  the first 8 bytes of PBKDF2-HMAC-SHA256 written as 16 lowercase hex characters.
- A stored credential field: ``iv(16) + base64(AES-128-CBC(text, master key))``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import secrets
import string

from cryptography.hazmat.primitives import padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from flowsafe.errors import FlowsafeError

PBKDF2_ITERATIONS = 100_000
_ALPHABET = string.ascii_letters + string.digits


class CorruptCiphertextError(FlowsafeError):
    """A stored value is not in ITFlow's format (wrong length, base64 or padding)."""


def random_ascii(length: int = 16) -> str:
    """A random alphanumeric string, as ITFlow uses for salts, IVs and master keys."""
    return "".join(secrets.choice(_ALPHABET) for _ in range(length))


def derive_wrapping_key(password: str, salt: str) -> bytes:
    """PHP's ``hash_pbkdf2('sha256', $password, $salt, 100000, 16)`` as the AES key bytes."""
    raw = hashlib.pbkdf2_hmac("sha256", password.encode(), salt.encode(), PBKDF2_ITERATIONS, 8)
    return raw.hex().encode("ascii")


def _aes_cbc_encrypt(plaintext: bytes, key: bytes, iv: bytes) -> str:
    padder = padding.PKCS7(128).padder()
    padded = padder.update(plaintext) + padder.finalize()
    encryptor = Cipher(algorithms.AES(key), modes.CBC(iv)).encryptor()
    return base64.b64encode(encryptor.update(padded) + encryptor.finalize()).decode("ascii")


def _aes_cbc_decrypt(encoded: str, key: bytes, iv: bytes, what: str) -> bytes:
    try:
        ciphertext = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise CorruptCiphertextError(f"{what}: ciphertext is not valid base64") from exc
    if not ciphertext or len(ciphertext) % 16:
        raise CorruptCiphertextError(
            f"{what}: ciphertext is {len(ciphertext)} bytes, not a multiple of 16"
        )
    decryptor = Cipher(algorithms.AES(key), modes.CBC(iv)).decryptor()
    padded = decryptor.update(ciphertext) + decryptor.finalize()
    unpadder = padding.PKCS7(128).unpadder()
    try:
        return unpadder.update(padded) + unpadder.finalize()
    except ValueError as exc:
        raise CorruptCiphertextError(f"{what}: bad padding (wrong key or damaged data)") from exc


def _split(value: str, prefix: int, what: str) -> tuple[str, str]:
    if not value.isascii() or len(value) <= prefix:
        raise CorruptCiphertextError(
            f"{what}: {len(value)} characters is too short for ITFlow's format"
        )
    return value[:prefix], value[prefix:]


def wrap_master_key(master_key: str, password: str, salt: str = "", iv: str = "") -> str:
    """Wrap the master key for a user, as ITFlow stores it in ``users``."""
    salt = salt or random_ascii()
    iv = iv or random_ascii()
    key = derive_wrapping_key(password, salt)
    return salt + iv + _aes_cbc_encrypt(master_key.encode("ascii"), key, iv.encode("ascii"))


def unwrap_master_key(wrapped: str, password: str) -> str:
    """Recover the master key from a user's wrapped copy and password."""
    head, body = _split(wrapped, 32, "wrapped master key")
    salt, iv = head[:16], head[16:]
    key = derive_wrapping_key(password, salt)
    plain = _aes_cbc_decrypt(body, key, iv.encode("ascii"), "wrapped master key")
    try:
        return plain.decode("ascii")
    except UnicodeDecodeError as exc:
        raise CorruptCiphertextError("wrapped master key: decrypts to non-ASCII bytes") from exc


def encrypt_field(cleartext: str, master_key: str, iv: str = "") -> str:
    """Encrypt a credential field (username, password) as ITFlow does."""
    iv = iv or random_ascii()
    return iv + _aes_cbc_encrypt(cleartext.encode("utf-8"), master_key.encode("ascii"), iv.encode())


def decrypt_field(value: str, master_key: str) -> str:
    """Decrypt a credential field; an empty column is an empty value."""
    if value == "":
        return ""
    iv, body = _split(value, 16, "credential field")
    key = master_key.encode("ascii")
    plain = _aes_cbc_decrypt(body, key, iv.encode("ascii"), "credential field")
    try:
        return plain.decode("utf-8")
    except UnicodeDecodeError:
        raise CorruptCiphertextError(
            "credential field: decrypts to bytes that are not text (wrong key?)"
        ) from None
