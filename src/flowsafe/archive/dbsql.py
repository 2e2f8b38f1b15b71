"""``db.sql`` for an ITFlow archive, written from a snapshot's dump files.

ITFlow's importer (``backupImportSql``) runs one statement per ``mysqli_query``, found by
appending lines until one ends with the delimiter, skipping ``--``/``#`` lines, honouring
``DELIMITER``. mariadb-dump's output as flowsafe keeps it already fits: every statement
ends at the end of a line, rows sit one per line with their newlines escaped, triggers
and routines come between ``DELIMITER ;;`` lines. So db.sql is the dump files in load
order between ``SET AUTOCOMMIT = 0`` and ``COMMIT``, with a comment header of ITFlow's
shape and without the first line's
``/*M!999999\\- enable the sandbox mode */`` (a directive for the mariadb client that
ITFlow would pass to the server). Table files are checked against the manifest's digest
while they stream.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Protocol

from flowsafe.errors import VerificationError
from flowsafe.manifest import DumpFileEntry
from flowsafe.mariadb.load import Source, verified_chunks

SANDBOX = b"/*M!999999\\- enable the sandbox mode */"
# One transaction between DDL statements instead of one per INSERT; autocommit is put
# back because ITFlow goes on using the same connection after the import.
TAIL = b"\nCOMMIT;\nSET AUTOCOMMIT = 1;\n"
SMALL = ("header", "routines", "footer")  # held until their place in the load order


class Sink(Protocol):
    def write(self, data: bytes, /) -> int: ...


def header(generated: str, snapshot: str) -> bytes:
    return (f"-- ITFlow database backup\n-- Generated {generated}\n"
            f"-- Written by flowsafe from snapshot {snapshot} (mariadb-dump statements, one "
            "per line, as ITFlow's restore reads them)\n"
            "SET AUTOCOMMIT = 0;\n\n").encode()


def write_db_sql(entries: Sequence[DumpFileEntry], source: Source, out: Sink, head: bytes,
                 on_bytes: Callable[[int], None]) -> None:
    """Write ``head`` and every dump file in load order to ``out``: each chunk checked
    against the manifest before it is written; tables as they stream from ``source``,
    the small files held until their place."""
    by_file = {e.file: e for e in entries}
    held: dict[str, bytes] = {}
    seen: set[str] = set()
    done = 0
    out.write(head)
    for relative, reader in source.files():
        entry = by_file.get(relative)
        if entry is None:
            continue
        seen.add(relative)
        data_parts = [data for _, data in verified_chunks(entry, reader)]
        if entry.kind in SMALL:
            held[entry.kind] = b"".join(data_parts)
            continue
        if "header" in held:
            _write(out, held.pop("header").replace(SANDBOX, b"", 1))
        for data in data_parts:
            out.write(data)
            done += len(data)
            on_bytes(done)
        _end_line(out, data_parts)
    missing = sorted(set(by_file) - seen)
    if missing:
        raise VerificationError(f"'{missing[0]}' is missing from the snapshot: it is damaged; "
                                "export an older one")
    for kind in SMALL:
        if kind in held:
            _write(out, held[kind].replace(SANDBOX, b"", 1) if kind == "header" else held[kind])
    out.write(TAIL)


def _write(out: Sink, data: bytes) -> None:
    out.write(data)
    _end_line(out, [data])


def _end_line(out: Sink, parts: list[bytes]) -> None:
    """The next file must start on a line of its own."""
    last = next((p for p in reversed(parts) if p), b"\n")
    if not last.endswith(b"\n"):
        out.write(b"\n")
