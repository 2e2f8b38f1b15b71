"""Everything secret about a sample site, derived from its seed alone.

The site's MariaDB password (with characters that need escaping in SQL, PHP and
option files), the master key, the installation id and git commit, and the user
accounts with known passwords, bcrypt hashes and wrapped master keys.
"""

from __future__ import annotations

import functools
import hashlib
import random
from dataclasses import dataclass

import bcrypt

from flowsafe.itflow.crypto import wrap_master_key
from flowsafe.sample.content import BASE32, person, slug, token
from flowsafe.sample.plan import AGENTS, PORTAL_USERS

BCRYPT_ALPHABET = "./ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
BCRYPT_COST = 10
PASSWORD_WORDS = ("Sécurité", "Kaffee", "Blue Horse", "Tokyo東京", "Fjord", "Nimbus")
STAFF_DOMAIN = "msp.example.com"


@functools.lru_cache(maxsize=256)
def bcrypt_hash(password: str, salt: str) -> str:
    """PHP's ``password_hash()`` output (``$2y$``) for a fixed 22-character salt."""
    hashed = bcrypt.hashpw(password.encode(), f"$2b${BCRYPT_COST:02d}${salt}".encode())
    return "$2y$" + hashed.decode("ascii")[4:]


@functools.lru_cache(maxsize=256)
def wrapped_key(master_key: str, password: str, salt: str, iv: str) -> str:
    """``wrap_master_key`` with a fixed salt and IV (cached: PBKDF2 is slow on purpose)."""
    return wrap_master_key(master_key, password, salt, iv)


def password(rng: random.Random) -> str:
    return f"{rng.choice(PASSWORD_WORDS)}-{token(rng, 10)}-{rng.randint(10, 99)}"


@dataclass(frozen=True)
class User:
    """A row of ``users``: an agent (type 1) or a client-portal user (type 2)."""

    user_id: int
    name: str
    email: str
    password: str
    agent: bool
    totp_secret: str | None
    salt: str
    iv: str
    bcrypt_salt: str

    def password_hash(self) -> str:
        return bcrypt_hash(self.password, self.bcrypt_salt)

    def wrapped_key(self, master_key: str) -> str | None:
        return wrapped_key(master_key, self.password, self.salt, self.iv) if self.agent else None


@dataclass(frozen=True)
class Identity:
    """The secrets of one sample site."""

    db_password: str
    master_key: str
    installation_id: str
    commit: str
    users: tuple[User, ...]

    @classmethod
    def for_seed(cls, seed: int) -> Identity:
        rng = random.Random(f"{seed}:identity")
        db_password = f"{token(rng, 6)}#\"{token(rng, 4)}' \\{token(rng, 6)}"
        master_key = token(rng, 16)
        installation_id = token(rng, 32)
        users = tuple(_user(rng, user_id, user_id <= AGENTS)
                      for user_id in range(1, AGENTS + PORTAL_USERS + 1))
        commit = hashlib.sha1(f"flowsafe-sample:{seed}".encode()).hexdigest()
        return cls(db_password, master_key, installation_id, commit, users)

    @property
    def agents(self) -> tuple[User, ...]:
        return tuple(user for user in self.users if user.agent)


def _user(rng: random.Random, user_id: int, agent: bool) -> User:
    name = person(rng)
    if user_id == 1:
        email = f"admin@{STAFF_DOMAIN}"
    elif agent:
        email = f"{slug(name, 'agent')}{user_id}@{STAFF_DOMAIN}"
    else:
        email = f"{slug(name, 'portal')}{user_id}@client{user_id}.example.org"
    return User(
        user_id=user_id,
        name=name,
        email=email,
        password=password(rng),
        agent=agent,
        totp_secret=token(rng, 16, BASE32) if user_id % 2 else None,
        salt=token(rng, 16),
        iv=token(rng, 16),
        bcrypt_salt=token(rng, 21, BCRYPT_ALPHABET) + rng.choice(".Oeu"),
    )
