"""flowsafe.itflow.crypto checked against real PHP (hash_pbkdf2 + openssl_encrypt), both ways."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from flowsafe.execute import run
from flowsafe.itflow.crypto import (
    CorruptCiphertextError,
    decrypt_field,
    encrypt_field,
    unwrap_master_key,
    wrap_master_key,
)

_PRELUDE = "$in = json_decode(file_get_contents('php://stdin'), true);"


def run_php(code: str, inputs: dict[str, Any]) -> Any:
    """Run PHP ``code`` with ``$in`` decoded from JSON on stdin; ``$out`` comes back as JSON."""
    script = f"{_PRELUDE} {code} echo json_encode($out);"
    result = run(["php", "-r", script], input=json.dumps(inputs).encode())
    return json.loads(result.stdout)


PHP_WRAP = """
$key = hash_pbkdf2('sha256', $in['password'], $in['salt'], 100000, 16);
$out = $in['salt'] . $in['iv']
    . openssl_encrypt($in['master'], 'aes-128-cbc', $key, 0, $in['iv']);
"""
PHP_UNWRAP = """
$w = $in['wrapped'];
$key = hash_pbkdf2('sha256', $in['password'], substr($w, 0, 16), 100000, 16);
$out = openssl_decrypt(substr($w, 32), 'aes-128-cbc', $key, 0, substr($w, 16, 16));
"""
PHP_ENCRYPT_FIELD = """
$out = $in['iv'] . openssl_encrypt($in['text'], 'aes-128-cbc', $in['master'], 0, $in['iv']);
"""
PHP_DECRYPT_FIELD = """
$v = $in['value'];
$out = openssl_decrypt(substr($v, 16), 'aes-128-cbc', $in['master'], 0, substr($v, 0, 16));
"""

MASTER = "Xq3vT9kLm2Pz7RwB"
SALT = "saltsaltSALT1234"
IV = "ivivIVIV56789012"
PASSWORDS = ["correct horse", "pä$$wörd 🔑 '\"\\", " padded "]


@pytest.mark.parametrize("password", PASSWORDS)
def test_php_wraps_flowsafe_unwraps(password: str) -> None:
    wrapped = run_php(PHP_WRAP, {"master": MASTER, "password": password, "salt": SALT, "iv": IV})
    assert wrapped == wrap_master_key(MASTER, password, SALT, IV)
    assert unwrap_master_key(wrapped, password) == MASTER


@pytest.mark.parametrize("password", PASSWORDS)
def test_flowsafe_wraps_php_unwraps(password: str) -> None:
    wrapped = wrap_master_key(MASTER, password)
    assert run_php(PHP_UNWRAP, {"wrapped": wrapped, "password": password}) == MASTER


@pytest.mark.parametrize("text", ["", "admin", "ünïcødé ✓ 密码", "x" * 100])
def test_fields_both_ways(text: str) -> None:
    from_php = run_php(PHP_ENCRYPT_FIELD, {"text": text, "master": MASTER, "iv": IV})
    assert from_php == encrypt_field(text, MASTER, IV)
    assert decrypt_field(from_php, MASTER) == text
    ours = encrypt_field(text, MASTER)
    assert run_php(PHP_DECRYPT_FIELD, {"value": ours, "master": MASTER}) == text


def test_empty_field_is_one_block() -> None:
    value = run_php(PHP_ENCRYPT_FIELD, {"text": "", "master": MASTER, "iv": IV})
    assert len(value) == 40
    assert decrypt_field(value, MASTER) == ""
    assert decrypt_field("", MASTER) == ""


def _php_rejects_wrapped(wrapped: str, password: str) -> bool:
    return run_php(PHP_UNWRAP, {"wrapped": wrapped, "password": password}) is False


def test_wrong_password_is_bad_padding_in_both() -> None:
    wrapped = wrap_master_key(MASTER, "right", SALT, IV)
    with pytest.raises(CorruptCiphertextError, match="bad padding"):
        unwrap_master_key(wrapped, "wrong")
    assert _php_rejects_wrapped(wrapped, "wrong")


def test_damaged_last_block_is_bad_padding() -> None:
    wrapped = wrap_master_key(MASTER, "right", SALT, IV)
    raw = bytearray(base64.b64decode(wrapped[32:]))
    raw[-1] ^= 0xFF
    damaged = wrapped[:32] + base64.b64encode(bytes(raw)).decode()
    with pytest.raises(CorruptCiphertextError, match="bad padding"):
        unwrap_master_key(damaged, "right")
    assert _php_rejects_wrapped(damaged, "right")


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (IV + "!!!not base64!!!", "not valid base64"),
        (IV + base64.b64encode(b"x" * 15).decode(), "not a multiple of 16"),
        (IV, "too short"),
        ("short", "too short"),
    ],
)
def test_corrupt_fields(value: str, message: str) -> None:
    with pytest.raises(CorruptCiphertextError, match=f"credential field: .*{message}"):
        decrypt_field(value, MASTER)


@pytest.mark.parametrize(
    ("wrapped", "message"),
    [
        (SALT + IV + "%%%%", "not valid base64"),
        (SALT + IV + base64.b64encode(b"y" * 20).decode(), "not a multiple of 16"),
        (SALT + IV, "too short"),
    ],
)
def test_corrupt_wrapped_keys(wrapped: str, message: str) -> None:
    with pytest.raises(CorruptCiphertextError, match=f"wrapped master key: .*{message}"):
        unwrap_master_key(wrapped, "any")
