"""Deterministic sample content: people, companies, multilingual text, HTML and PNG images.

Big tables draw whole sentences from a per-seed pool (``Text``), so that building
a gigabyte of rows costs a few random choices per row, not one per word.
"""

from __future__ import annotations

import random
import string
import struct
import unicodedata
import zlib

WORDS = (
    "server", "backup", "firewall", "printer", "password", "mailbox", "license", "switch",
    "VPN", "domain", "certificate", "router", "laptop", "update", "invoice", "network",
    "DNS", "restore", "replication", "UPS", "toner", "Outlook", "SharePoint", "rack",
    "onboarding", "quota", "NAS", "hypervisor", "patch", "reboot", "the", "a", "with",
    "after", "before", "and", "is", "was", "not", "again", "café", "résumé", "naïve",
    "Zürich", "São Paulo", "Ångström", "façade", "señor", "größe", "Łódź", "Привет",
    "сервер", "東京", "サーバー", "数据库", "备份", "네트워크", "Ωmega", "🚀", "✅", "🔥",
    "🖨️", "x²", "→", "€120", "½",
)
FIRST_NAMES = (
    "Anna", "José", "Zoë", "Søren", "Chloé", "Mateo", "Yuki", "Élodie", "Björn", "Priya",
    "Olu", "Renée", "Jürgen", "Noah", "Inès", "Kenji", "李", "Ana", "Siobhán", "Dmitri",
)
LAST_NAMES = (
    "Müller", "García", "O'Brien", "Nguyễn", "Kowalski", "田中", "Dubois", "Smith",
    "Østergaard", "Rossi", "Silva", "Kim", "Novák", "D'Amico", "Van der Berg", "Ñúñez",
)
COMPANY_WORDS = (
    "Acme", "Nordlicht", "Blue Harbor", "Café Lumière", "Sakura", "Ironclad", "Pinecrest",
    "Zephyr", "Öko", "Granite", "Kōbō", "Maple & Oak", "Delta", "Helios", "Quantum",
)
COMPANY_SUFFIXES = ("GmbH", "LLC", "Ltd", "S.A.", "株式会社", "& Co", "Inc.", "AB", "SARL")
USER_AGENTS = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/126.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/17.5 Safari/605.1.15",
    "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Mobile/15E148",
    "ITFlow-cron/1.0 (php-cli 8.2)",
)
ALPHANUMERIC = string.ascii_letters + string.digits
BASE32 = string.ascii_uppercase + "234567"


def token(rng: random.Random, length: int, alphabet: str = ALPHANUMERIC) -> str:
    """A random string such as ITFlow's keys, salts, IVs and reference names."""
    return "".join(rng.choices(alphabet, k=length))


def person(rng: random.Random) -> str:
    return f"{rng.choice(FIRST_NAMES)} {rng.choice(LAST_NAMES)}"


def company(rng: random.Random) -> str:
    return f"{rng.choice(COMPANY_WORDS)} {rng.choice(COMPANY_SUFFIXES)}"


def slug(text: str, fallback: str) -> str:
    """Lower-case ASCII letters and digits of ``text`` (accents dropped), else ``fallback``."""
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    kept = "".join(c for c in ascii_text.lower() if c.isalnum() or c == " ").split()
    return ".".join(kept) or fallback


def ip_address(rng: random.Random) -> str:
    first, second, third, fourth = rng.randbytes(4)
    return f"{first % 223 + 1}.{second}.{third}.{fourth % 254 + 1}"


def png(rng: random.Random, width: int, height: int) -> bytes:
    """A valid RGB PNG of random pixels (so it does not compress)."""
    raw = b"".join(b"\x00" + rng.randbytes(width * 3) for _ in range(height))

    def chunk(kind: bytes, body: bytes) -> bytes:
        crc = zlib.crc32(kind + body) & 0xFFFFFFFF
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", crc)

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(raw, 1))
        + chunk(b"IEND", b"")
    )


class Text:
    """A per-seed pool of sentences; rows are built from whole sentences."""

    def __init__(self, seed: int, size: int = 600) -> None:
        rng = random.Random(f"{seed}:text")
        self.sentences = [self._sentence(rng) for _ in range(size)]
        self.mean = sum(map(len, self.sentences)) / size

    @staticmethod
    def _sentence(rng: random.Random) -> str:
        words = rng.choices(WORDS, k=rng.randint(5, 16))
        words[0] = words[0].capitalize()
        if rng.random() < 0.3:
            words.append(f"#{rng.randint(1, 99999)}")
        return " ".join(words) + rng.choice(".!?.")

    def sentence(self, rng: random.Random) -> str:
        return rng.choice(self.sentences)

    def prose(self, rng: random.Random, chars: int) -> str:
        """About ``chars`` characters of plain text."""
        count = max(1, round(chars / (self.mean + 1)))
        return " ".join(rng.choices(self.sentences, k=count))

    def paragraphs(self, rng: random.Random, chars: int) -> list[str]:
        """About ``chars`` characters of text in paragraphs of about 400."""
        return [self.prose(rng, 400) for _ in range(max(1, round(chars / 420)))]

    def html(self, rng: random.Random, chars: int) -> str:
        """About ``chars`` characters of ITFlow-editor-style HTML."""
        return html(self.paragraphs(rng, chars))


def html(paragraphs: list[str]) -> str:
    return "".join(f"<p>{paragraph}</p>" for paragraph in paragraphs)
