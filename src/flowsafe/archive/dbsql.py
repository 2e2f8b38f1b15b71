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
from pathlib import Path
from typing import Protocol

from flowsafe.archive.snapshot_dump import DumpPart
from flowsafe.errors import VerificationError

CHUNK = 1 << 20
SANDBOX = b"/*M!999999\\- enable the sandbox mode */"
# One transaction between DDL statements instead of one per INSERT; autocommit is put
# back because ITFlow goes on using the same connection after the import.
TAIL = b"\nCOMMIT;\nSET AUTOCOMMIT = 1;\n"


class Sink(Protocol):
    def write(self, data: bytes, /) -> int: ...


def header(generated: str, snapshot: str) -> bytes:
    return (f"-- ITFlow database backup\n-- Generated {generated}\n"
            f"-- Written by flowsafe from snapshot {snapshot} (mariadb-dump statements, one "
            "per line, as ITFlow's restore reads them)\n"
            "SET AUTOCOMMIT = 0;\n\n").encode()


def write_db_sql(folder: Path, parts: Sequence[DumpPart], out: Sink, head: bytes,
                 on_bytes: Callable[[int], None]) -> None:
    """Write ``head`` and every part below ``folder`` to ``out``, checking table digests."""
    out.write(head)
    done = 0
    for part in parts:
        digest = part.digest()
        last = b"\n"
        with (folder / part.file).open("rb") as file:
            first = file.readline()
            if not first.startswith(SANDBOX):
                digest.update(first)
                out.write(first)
                last = first[-1:] or last
            while chunk := file.read(CHUNK):
                digest.update(chunk)
                out.write(chunk)
                last = chunk[-1:]
                done += len(chunk)
                on_bytes(done)
        if last != b"\n":
            out.write(b"\n")  # the next part must start on a line of its own
        if part.sha256 is not None and digest.hexdigest() != part.sha256:
            raise VerificationError(
                f"the snapshot's dump of table {part.table} ({part.file}) does not match its "
                "manifest: the snapshot is damaged; export an older one")
    out.write(TAIL)
