"""The sample's rows: the initial content of every table, and one night of activity.

Row makers return tuples in ``schema`` column order. Makers for the tables that
grow (tickets, ticket_replies, documents, logs, app_logs, history) are shared
by the initial build and by ``night_statements``.
"""

from __future__ import annotations

import base64
import random
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

from flowsafe.itflow.crypto import encrypt_field
from flowsafe.sample import schema
from flowsafe.sample.content import (
    BASE32,
    USER_AGENTS,
    Text,
    company,
    html,
    ip_address,
    person,
    png,
    slug,
    token,
)
from flowsafe.sample.files import SCHEMA_VERSION, ClientFile
from flowsafe.sample.identity import Identity, wrapped_key
from flowsafe.sample.plan import Plan, past, stamp
from flowsafe.sample.sql import Row, SqlValue, inserts, literal

LOG_EVENTS = (
    ("Login", "Success"), ("Login", "Failed"), ("Ticket", "Create"), ("Ticket", "Edit"),
    ("Client", "View"), ("Credential", "View"), ("Document", "Edit"), ("File", "Upload"),
    ("Cron", "Run"), ("Mail", "Send"),
)
APP_LOG_CATEGORIES = ("Cron", "Mail", "Ticket parser", "Backup", "Auth", "API")
APP_LOG_TYPES = ("info", "info", "info", "warning", "error", "debug")
HISTORY_STATUSES = ("Draft", "Sent", "Viewed", "Partial", "Paid", "Cancelled")
TICKET_SOURCES = ("Email", "Web", "Phone", "Portal")
TICKET_PRIORITIES = ("Low", "Medium", "High", "Critical")
REPLY_TYPES = ("Internal", "Public", "Client")
CREDENTIAL_KINDS = ("Domain admin", "M365 global admin", "Router", "Wi-Fi", "NAS", "Firewall",
                    "VPN", "Backup portal", "Registrar", "Printer")
PASSWORD_TAILS = ("", "!", "é", "€", "🔑", "'\"\\", " ", "密码")
CURRENCIES = ("USD", "EUR", "GBP", "JPY", "CHF")
STATUS_CLOSED = 5


@dataclass(frozen=True)
class World:
    """What the row makers need: the text pool and the ids they may refer to."""

    text: Text
    clients: int
    contacts: int
    agents: tuple[int, ...]

    def client(self, rng: random.Random) -> int:
        return rng.randint(1, self.clients)

    def agent(self, rng: random.Random) -> int:
        return rng.choice(self.agents)


def ticket_row(w: World, rng: random.Random, ticket_id: int, when: str) -> Row:
    closed = rng.random() < 0.7
    return (
        ticket_id, "TKT-", ticket_id, rng.choice(TICKET_SOURCES),
        rng.randint(1, 6) if rng.random() < 0.6 else None, w.text.sentence(rng)[:200],
        w.text.html(rng, rng.randint(300, 3000)), rng.choice(TICKET_PRIORITIES),
        STATUS_CLOSED if closed else rng.randint(1, 4), rng.randint(0, 1), int(rng.random() < 0.1),
        token(rng, 8) if rng.random() < 0.05 else None,
        rng.choice(("Good", "Bad")) if closed and rng.random() < 0.2 else None,
        when, when, when if closed else None, when if closed else None,
        w.agent(rng), w.agent(rng) if rng.random() < 0.8 else None,
        rng.randint(1, w.contacts) if rng.random() < 0.7 else None, w.client(rng),
    )


def reply_row(w: World, rng: random.Random, reply_id: int, ticket_id: int, when: str) -> Row:
    worked = f"00:{rng.choice((5, 10, 15, 30, 45))}:00" if rng.random() < 0.6 else None
    return (reply_id, w.text.html(rng, rng.randint(150, 2000)), rng.choice(REPLY_TYPES), worked,
            when, None, None, w.agent(rng), ticket_id)


def log_row(w: World, rng: random.Random, log_id: int, when: str) -> Row:
    kind, action = rng.choice(LOG_EVENTS)
    return (log_id, kind, action, w.text.prose(rng, rng.randint(60, 600)), ip_address(rng),
            rng.choice(USER_AGENTS), when, w.client(rng) if rng.random() < 0.6 else 0,
            w.agent(rng), rng.randint(1, 100_000))


def app_log_row(w: World, rng: random.Random, app_log_id: int, when: str) -> Row:
    return (app_log_id, rng.choice(APP_LOG_CATEGORIES), rng.choice(APP_LOG_TYPES),
            w.text.prose(rng, rng.randint(80, 900))[:1000], when)


def history_row(w: World, rng: random.Random, history_id: int, when: str) -> Row:
    return (history_id, rng.choice(HISTORY_STATUSES), w.text.prose(rng, rng.randint(50, 600)),
            when, rng.randint(1, 20_000), 0, 0)


def document_row(w: World, rng: random.Random, document_id: int, when: str) -> Row:
    paragraphs = w.text.paragraphs(rng, rng.randint(3000, 20_000))
    content = html(paragraphs)
    if rng.random() < 0.33:
        image = png(rng, rng.randint(64, 128), rng.randint(48, 96))
        encoded = base64.b64encode(image).decode("ascii")
        content += f'<p><img src="data:image/png;base64,{encoded}"></p>'
    agent = w.agent(rng)
    return (document_id, w.text.sentence(rng)[:200], None if rng.random() < 0.5 else
            w.text.sentence(rng), content, "\n".join(paragraphs), int(rng.random() < 0.1),
            when, when, None, agent, agent, w.client(rng))


RowMaker = Callable[[World, random.Random, int, str], Row]
GROWING: dict[str, tuple[schema.Table, RowMaker]] = {
    "tickets": (schema.TICKETS, ticket_row),
    "documents": (schema.DOCUMENTS, document_row),
    "logs": (schema.LOGS, log_row),
    "app_logs": (schema.APP_LOGS, app_log_row),
    "history": (schema.HISTORY, history_row),
}
NIGHT_APPENDS = {"logs": 0.40, "app_logs": 0.10, "history": 0.15, "tickets": 0.08}
NIGHT_REPLIES = 0.12
NIGHT_TICKET_UPDATES = 0.10
NIGHT_OLD_UPDATES = 0.025
RECENT_TICKETS = 200


def _spread(
    rng: random.Random, count: int, when: Callable[[float], str]
) -> Iterator[tuple[int, str]]:
    """``count`` (index, time) pairs in time order over the span ``when`` maps 0..1 onto."""
    for index in range(count):
        yield index, when((index + rng.random()) / count)


def _history_time(position: float) -> str:
    return stamp(past(position))


def _encrypted(rng: random.Random, cleartext: str, master_key: str) -> str:
    return encrypt_field(cleartext, master_key, token(rng, 16))


def _secret_text(rng: random.Random) -> str:
    return token(rng, rng.randint(8, 24)) + rng.choice(PASSWORD_TAILS)


def _update(table: schema.Table, row_id: int, values: dict[str, SqlValue]) -> str:
    sets = ", ".join(f"`{column}` = {literal(value)}" for column, value in values.items())
    return f"UPDATE `{table.name}` SET {sets} WHERE `{table.key}` = {row_id};\n"


def file_row(w: World, rng: random.Random, item: ClientFile) -> Row:
    return (item.file_id, item.reference_name, item.name,
            w.text.sentence(rng) if rng.random() < 0.3 else None, item.ext, item.mime,
            item.upload.size, 0, item.created_at, None, None, None, w.agent(rng), item.client_id)


def _fixed_rows(w: World, rng: random.Random, identity: Identity) -> Iterator[str]:
    """companies, settings, users and api_keys: a handful of rows, not scaled."""
    created = stamp(past(0.0))
    yield from inserts(schema.COMPANIES, [(
        1, company(rng), "1 Harbour Road", "Zürich", "Switzerland", "+41 44 000 00 00",
        "hello@msp.example.com", "https://msp.example.com", "logo.png", "CHF", created, None,
    )])
    yield from inserts(schema.SETTINGS, [(
        1, SCHEMA_VERSION, "smtp.example.com", 587, "itflow@msp.example.com", token(rng, 20),
        "itflow@msp.example.com", "imap.example.com", "tickets@msp.example.com", token(rng, 20),
        token(rng, 40), "sk_live_" + token(rng, 24), "sk-" + token(rng, 40), "Europe/Zurich", 1,
    )])
    yield from inserts(schema.USERS, [(
        user.user_id, user.name, user.email, user.password_hash(), 1 if user.agent else 2, 1,
        user.totp_secret, "avatar.png" if user.agent else None,
        user.wrapped_key(identity.master_key), created, None, None,
    ) for user in identity.users])
    keys = []
    for key_id in (1, 2):
        decrypt_password = token(rng, 32)
        wrapped = wrapped_key(identity.master_key, decrypt_password, token(rng, 16), token(rng, 16))
        keys.append((key_id, f"Integration {key_id}", token(rng, 32), wrapped, created,
                     "2027-12-31", key_id - 1))
    yield from inserts(schema.API_KEYS, keys)


def _client_rows(w: World, rng: random.Random, plan: Plan, portal_users: Sequence[int],
                 master_key: str) -> Iterator[str]:
    """clients and what hangs off them: contacts, credentials and legacy logins."""
    def clients() -> Iterator[Row]:
        for index, when in _spread(rng, plan.clients, _history_time):
            name = company(rng)
            yield (index + 1, name, rng.choice(("Business", "Non-profit", None)),
                   f"https://{slug(name, 'client')}.example.com", rng.choice((None, "Referral")),
                   f"{rng.randint(60, 180)}.00", rng.choice(CURRENCIES), rng.choice((0, 15, 30)),
                   token(rng, 9) if rng.random() < 0.5 else None, token(rng, 3).upper(),
                   int(rng.random() < 0.1), w.text.prose(rng, 300) if rng.random() < 0.7 else None,
                   when, when, None if rng.random() > 0.05 else when, when)

    def contacts() -> Iterator[Row]:
        for index, when in _spread(rng, plan.contacts, _history_time):
            name = person(rng)
            user = portal_users[index] if index < len(portal_users) else None
            yield (index + 1, name, rng.choice(("CEO", "IT lead", "Office manager", None)),
                   f"{slug(name, 'contact')}{index + 1}@client.example.org",
                   f"+1 555 {rng.randint(1000, 9999)}", None, int(index < plan.clients),
                   w.text.sentence(rng) if rng.random() < 0.3 else None, when, None, None, user,
                   index % plan.clients + 1)

    def credentials() -> Iterator[Row]:
        for index, when in _spread(rng, plan.credentials, _history_time):
            username = "" if rng.random() < 0.1 else f"admin{rng.randint(1, 99)}"
            yield (index + 1, f"{rng.choice(CREDENTIAL_KINDS)} {index + 1}",
                   w.text.sentence(rng)[:200] if rng.random() < 0.5 else None,
                   f"https://{ip_address(rng)}/", _encrypted(rng, username, master_key),
                   _encrypted(rng, _secret_text(rng), master_key),
                   token(rng, 16, BASE32) if rng.random() < 0.3
                   else None, w.text.prose(rng, 200) if rng.random() < 0.4 else None,
                   int(rng.random() < 0.1), when, when, None, when, when,
                   rng.randint(1, plan.contacts) if rng.random() < 0.3 else None,
                   w.client(rng))

    def legacy_logins() -> Iterator[Row]:
        for index in range(plan.clients):
            secret = rng.randbytes(12) + b"\xff\x00'\\\"\xfe\x80"
            yield (index + 1, f"Old login {index + 1}", f"user{index + 1}", secret, index + 1)

    yield from inserts(schema.CLIENTS, clients())
    yield from inserts(schema.CONTACTS, contacts())
    yield from inserts(schema.CREDENTIALS, credentials())
    yield from inserts(schema.LEGACY_LOGINS, legacy_logins())


def build_statements(seed: int, w: World, plan: Plan, identity: Identity,
                     files: Sequence[ClientFile]) -> Iterator[str]:
    """The whole initial database: ``CREATE TABLE`` for every table, then every row."""
    for table in schema.TABLES:
        yield table.create_sql()
    yield from _fixed_rows(w, random.Random(f"{seed}:fixed"), identity)
    portal = [user.user_id for user in identity.users if not user.agent]
    yield from _client_rows(w, random.Random(f"{seed}:clients"), plan, portal,
                            identity.master_key)
    rng = random.Random(f"{seed}:files")
    yield from inserts(schema.FILES, (file_row(w, rng, item) for item in files))
    for name, count in (("tickets", plan.tickets), ("documents", plan.documents),
                        ("logs", plan.logs), ("app_logs", plan.app_logs),
                        ("history", plan.history)):
        table, maker = GROWING[name]
        rng = random.Random(f"{seed}:{name}")
        yield from inserts(table, (maker(w, rng, index + 1, when)
                                   for index, when in _spread(rng, count, _history_time)))
    rng = random.Random(f"{seed}:ticket_replies")
    yield from inserts(schema.TICKET_REPLIES, (
        reply_row(w, rng, index + 1, 1 + index * plan.tickets // plan.replies, when)
        for index, when in _spread(rng, plan.replies, _history_time)
    ))


def night_statements(w: World, rng: random.Random, when: Callable[[float], str],
                     top: dict[str, int], changes: int, master_key: str,
                     files: Sequence[ClientFile]) -> Iterator[str]:
    """One night: ``changes`` rows appended or updated, plus ``files`` rows.

    ``top`` is the highest id of each table before the night; ``when`` maps 0..1
    onto the night's day.
    """
    for name, share in NIGHT_APPENDS.items():
        table, maker = GROWING[name]
        first = top[name] + 1
        yield from inserts(table, (maker(w, rng, first + index, moment) for index, moment
                                   in _spread(rng, round(changes * share), when)))
    newest_ticket = top["tickets"] + round(changes * NIGHT_APPENDS["tickets"])
    yield from inserts(schema.TICKET_REPLIES, (
        reply_row(w, rng, top["ticket_replies"] + 1 + index,
                  rng.randint(max(1, newest_ticket - RECENT_TICKETS), newest_ticket), moment)
        for index, moment in _spread(rng, round(changes * NIGHT_REPLIES), when)
    ))
    yield from inserts(schema.FILES, (file_row(w, rng, item) for item in files))
    recent = range(max(1, top["tickets"] - RECENT_TICKETS), top["tickets"] + 1)
    for ticket_id in _pick(rng, recent, round(changes * NIGHT_TICKET_UPDATES)):
        moment = when(rng.random())
        status = rng.randint(2, STATUS_CLOSED)
        yield _update(schema.TICKETS, ticket_id, {
            "ticket_status": status, "ticket_updated_at": moment,
            "ticket_resolved_at": moment if status == STATUS_CLOSED else None,
        })
    old = round(changes * NIGHT_OLD_UPDATES)
    for client_id in _pick(rng, range(1, top["clients"] + 1), old):
        yield _update(schema.CLIENTS, client_id, {
            "client_notes": w.text.prose(rng, 300), "client_updated_at": when(rng.random()),
        })
    for credential_id in _pick(rng, range(1, top["credentials"] + 1), old):
        moment = when(rng.random())
        yield _update(schema.CREDENTIALS, credential_id, {
            "credential_password": _encrypted(rng, _secret_text(rng), master_key),
            "credential_password_changed_at": moment, "credential_updated_at": moment,
        })


def _pick(rng: random.Random, ids: range, count: int) -> list[int]:
    return sorted(rng.sample(ids, min(count, len(ids))))

