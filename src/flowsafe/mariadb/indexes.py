"""Secondary indexes built after the rows: a CREATE TABLE cut into the table as loaded
and the ``ALTER TABLE`` that completes it, as myloader's ``--innodb-optimize-keys`` does.

InnoDB builds an index over loaded rows by sorting them, which is faster than
keeping it up to date row by row. Kept in the CREATE TABLE: the primary key, any
index of the AUTO_INCREMENT column (InnoDB needs one), FULLTEXT and SPATIAL
indexes (adding those later rebuilds the table) and CHECK constraints; a table
without a primary key keeps everything (its first unique index may be its
clustered one). Moved to the ALTER: other keys, unique keys and foreign keys
(added with foreign key checks off, so no rows are read).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from flowsafe.mariadb.statements import skip_parens, split_top

_SECONDARY = re.compile(rb"\s*(?:UNIQUE\s+)?(?:KEY|INDEX)\b", re.IGNORECASE)
_FOREIGN = re.compile(rb"\s*(?:CONSTRAINT\s+(?:`(?:[^`]|``)+`\s+)?)?FOREIGN\s+KEY\b",
                      re.IGNORECASE)
_PRIMARY = re.compile(rb"\s*(?:CONSTRAINT\s+(?:`(?:[^`]|``)+`\s+)?)?PRIMARY\s+KEY\b",
                      re.IGNORECASE)
_AUTO_COLUMN = re.compile(rb"\s*(`(?:[^`]|``)+`)[^,]*\bAUTO_INCREMENT\b", re.IGNORECASE)
_FIRST_COLUMN = re.compile(rb"\((\s*`(?:[^`]|``)+`)")


@dataclass(frozen=True)
class Deferred:
    """The CREATE TABLE to run before the rows, and the ALTER TABLE to run after them."""

    create: bytes
    alter: bytes | None


def defer_indexes(create: bytes, table_sql_name: bytes) -> Deferred:
    """Split ``create`` (a CREATE TABLE's code); ``alter`` is None when nothing moves."""
    open_at = create.find(b"(")
    if open_at < 0:
        return Deferred(create, None)
    close_at = skip_parens(create, open_at)
    definitions = split_top(create[open_at + 1:close_at - 1])
    if not any(_PRIMARY.match(d) for d in definitions):
        return Deferred(create, None)
    auto = next((m.group(1) for d in definitions if (m := _AUTO_COLUMN.match(d))), None)
    kept, moved = [], []
    for definition in definitions:
        if _FOREIGN.match(definition) or (_SECONDARY.match(definition)
                                          and not _indexes(definition, auto)):
            moved.append(b"ADD " + definition.strip())
        else:
            kept.append(definition)
    if not moved:
        return Deferred(create, None)
    body = b",".join(kept).rstrip()
    if not body.endswith(b"\n"):
        body += b"\n"
    new_create = create[:open_at + 1] + body + create[close_at - 1:]
    alter = b"ALTER TABLE " + table_sql_name + b" " + b", ".join(moved)
    return Deferred(new_create, alter)


def _indexes(definition: bytes, column: bytes | None) -> bool:
    """Whether an index definition starts with ``column`` (the AUTO_INCREMENT column)."""
    if column is None:
        return False
    first = _FIRST_COLUMN.search(definition)
    return first is not None and first.group(1).strip() == column
