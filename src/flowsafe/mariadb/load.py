"""Loading a split dump (the folder ``dump.py`` writes) into a database.

This module owns the restore side of the dump format: ``load_tables`` streams
``_header.sql + tables/<file>.sql + _footer.sql`` into one ``mariadb`` client
per table, up to ``jobs`` at once, biggest tables first, each table inside one
transaction with foreign key checks off. While a table file streams, its digest
is computed as ``dump.digest_file`` does and checked against the manifest
before the table's ``COMMIT``; a damaged file is reported as such even when its
SQL failed first. ``load_routines`` loads views, routines and events after.

Any failure, or an interrupt, kills every ``mariadb`` child still running and
raises the first error.
"""

from __future__ import annotations

import contextlib
import hashlib
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_EXCEPTION, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from flowsafe import execute
from flowsafe.errors import ToolError, VerificationError
from flowsafe.manifest import TableEntry
from flowsafe.mariadb.connection import DbTarget, client_options

CHUNK = 1 << 20  # bytes read from a table file at a time
PROGRESS_STEP = 4 << 20  # on_bytes is called once this many more bytes were streamed
# Around a table file: one transaction (one commit, not one per INSERT), foreign keys
# unchecked (tables load in any order). Unique checks stay on: with both checks off
# InnoDB (10.6+) takes its bulk path for an empty table, measured at 2.5x the server
# CPU of this on MariaDB 10.11.
BEGIN = b"\nSET autocommit=0;\nSET unique_checks=1;\nSET foreign_key_checks=0;\n"
END = b"\nCOMMIT;\n"

# The header's SET NAMES utf8mb4 sets the connection's charset. The client only splits
# the utf8mb4 text into statements, and in UTF-8 every byte of a multi-byte character is
# >= 0x80, never a quote or ";": splitting it as latin1 is the same, with 30% less CPU.
CLIENT_OPTIONS = ("--default-character-set=latin1", "--max-allowed-packet=1G")

_DASH = 0x2D  # b"-"
_START, _TEXT, _COMMENT = range(3)  # where in a line LineDigest is


@dataclass(frozen=True)
class TableLoad:
    """What loading one table needs: its file and what the manifest says about it."""

    name: str
    path: Path
    sha256: str
    rows: int
    bytes: int

    @classmethod
    def from_entry(cls, entry: TableEntry, folder: Path) -> TableLoad:
        """The load of a manifest table whose dump folder is ``folder``."""
        return cls(entry.name, folder / entry.file, entry.sha256, entry.rows, entry.bytes)


@dataclass(frozen=True)
class LoadResult:
    """How many tables and table-file bytes were loaded, and how long it took."""

    tables: int
    bytes: int
    seconds: float


class LineDigest:
    """sha256 over the lines that do not start with ``--``, fed in pieces of any size.

    The same digest as ``dump.digest_file`` (an unterminated last line counts with a
    newline), but it hashes whole spans between comment lines instead of line by line.
    """

    def __init__(self) -> None:
        self.hash = hashlib.sha256()
        self.where = _START
        self.dash = False  # at _START, the previous piece ended with the line's first "-"

    def update(self, data: bytes) -> None:
        view = memoryview(data)
        pos, end = 0, len(data)
        while pos < end:
            if self.where == _COMMENT:
                newline = data.find(b"\n", pos)
                if newline < 0:
                    return
                pos, self.where = newline + 1, _START
                continue
            if self.where == _START:
                if self.dash or data[pos] == _DASH:
                    second = pos if self.dash else pos + 1
                    if second == end:
                        self.dash = True
                        return
                    if data[second] == _DASH:
                        pos, self.where, self.dash = second + 1, _COMMENT, False
                        continue
                    if self.dash:
                        self.hash.update(b"-")
                        self.dash = False
                self.where = _TEXT
            cut = data.find(b"\n-", pos)  # a line that may be a comment
            stop = end if cut < 0 else cut + 1
            self.hash.update(view[pos:stop])
            pos = stop
            if data[stop - 1] == 0x0A:  # b"\n"
                self.where = _START

    def hexdigest(self) -> str:
        """The digest of everything fed so far (the stream is taken as ended)."""
        final = self.hash.copy()
        if self.dash:
            final.update(b"-\n")
        elif self.where == _TEXT:
            final.update(b"\n")
        return final.hexdigest()


class _Loads:
    """The children of one ``load_tables`` run, the bytes streamed and the first error."""

    def __init__(self, on_bytes: Callable[[int], None] | None) -> None:
        self.lock = threading.Lock()
        self.children: set[subprocess.Popen[bytes]] = set()
        self.stopping = False
        self.error: BaseException | None = None
        self.on_bytes = on_bytes
        self.streamed = 0
        self.reported = 0

    def started(self, child: subprocess.Popen[bytes]) -> None:
        with self.lock:
            self.children.add(child)
            if self.stopping:
                child.kill()

    def ended(self, child: subprocess.Popen[bytes]) -> None:
        with self.lock:
            self.children.discard(child)

    def stop(self) -> None:
        """Kill every child still running; later ones are killed as they start."""
        with self.lock:
            self.stopping = True
            for child in self.children:
                child.kill()

    def fail(self, error: BaseException) -> None:
        """Keep the first error (later ones are mostly children we killed) and stop."""
        with self.lock:
            if self.error is None:
                self.error = error
        self.stop()

    def add(self, count: int) -> None:
        with self.lock:
            self.streamed += count
            if self.on_bytes is not None and self.streamed - self.reported >= PROGRESS_STEP:
                self.reported = self.streamed
                self.on_bytes(self.streamed)

    def report(self) -> None:
        with self.lock:
            if self.on_bytes is not None and self.streamed != self.reported:
                self.reported = self.streamed
                self.on_bytes(self.streamed)


def _frame(path: Path) -> bytes:
    """A small file of the dump (header, footer), read whole."""
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise VerificationError(f"'{path.name}' is missing from the snapshot") from None


def _stream(pipe: IO[bytes], path: Path, loads: _Loads) -> tuple[str, int]:
    """Copy a file into ``pipe`` in chunks; return its digest (as ``LineDigest``) and size.

    Once the child stops reading, the rest is only hashed: a damaged file that broke
    the SQL is then reported as damaged. A stopping run skips that too.
    """
    digest = LineDigest()
    size = 0
    reading = True  # the child still reads its stdin
    with path.open("rb") as file:
        while chunk := file.read(CHUNK):
            digest.update(chunk)
            size += len(chunk)
            if reading:
                try:
                    pipe.write(chunk)
                except BrokenPipeError:
                    reading = False
                loads.add(len(chunk))
            elif loads.stopping:
                break
    return digest.hexdigest(), size


def _error_lines(stderr: bytes) -> str:
    """The client's ERROR lines only: it may echo the failing statement, and rows can hold
    secrets (ITFlow keeps SMTP and API passwords in plain text)."""
    lines = [line for line in stderr.decode("utf-8", "replace").splitlines()
             if line.startswith("ERROR")]
    return execute.tail("\n".join(lines)) if lines else execute.tail(stderr, 1)


def run_client(
    target: DbTarget,
    what: str,
    feed: Callable[[IO[bytes]], object],
    loads: _Loads | None = None,
    client_args: Sequence[str] = CLIENT_OPTIONS,
) -> None:
    """Run one ``mariadb`` client on ``target.database`` with ``feed`` writing its stdin.

    The child is killed if ``feed`` raises; a failing child becomes a ``ToolError``
    saying ``what`` was loaded, with its stderr tail.
    """
    with client_options(target) as (option, fd), tempfile.TemporaryFile() as errors:
        child = execute.spawn(
            ["mariadb", option, *client_args, target.database],
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            stderr=errors.fileno(),
            pass_fds=[fd],
        )
        stdin = child.stdin
        assert stdin is not None
        if loads is not None:
            loads.started(child)
        try:
            try:
                feed(stdin)
                stdin.close()
            except BrokenPipeError:
                pass  # the child stopped reading: its exit code and stderr say why
            code = child.wait()
        except BaseException:
            child.kill()
            child.wait()
            raise
        finally:
            with contextlib.suppress(BrokenPipeError):
                stdin.close()
            if loads is not None:
                loads.ended(child)
        if code != 0:
            errors.seek(0)
            raise ToolError("mariadb", code, _error_lines(errors.read()), f"loading {what}")


def _load_table(
    target: DbTarget, header: bytes, footer: bytes, table: TableLoad, loads: _Loads
) -> None:
    def feed(pipe: IO[bytes]) -> None:
        pipe.write(header + BEGIN)
        sha256, size = _stream(pipe, table.path, loads)
        if loads.stopping:
            return
        if (sha256, size) != (table.sha256, table.bytes):
            raise VerificationError(
                f"table '{table.name}': dump file digest differs from the manifest "
                "(damaged backup); nothing was swapped"
            )
        pipe.write(END + footer)

    if loads.stopping:
        return
    try:
        run_client(target, f"table '{table.name}'", feed, loads)
    except BaseException as exc:
        loads.fail(exc)
        raise


def load_tables(
    target: DbTarget,
    header: Path,
    footer: Path,
    tables: Sequence[TableLoad],
    *,
    jobs: int,
    on_bytes: Callable[[int], None] | None = None,
) -> LoadResult:
    """Load every table into ``target.database`` with up to ``jobs`` clients at once.

    ``on_bytes`` gets the table-file bytes streamed so far, about every 4 MiB and at
    the end; it is called from worker threads, one call at a time (under a lock).
    Raises ``VerificationError`` for a missing or damaged table file (missing files
    before anything is loaded), ``ToolError`` for a failing client.
    """
    start = time.monotonic()
    for table in tables:
        if not table.path.is_file():
            raise VerificationError(
                f"table '{table.name}': its dump file is missing from the snapshot"
            )
    header_bytes, footer_bytes = _frame(header), _frame(footer)
    loads = _Loads(on_bytes)
    order = sorted(tables, key=lambda table: table.bytes, reverse=True)
    with ThreadPoolExecutor(max(1, jobs), thread_name_prefix="load") as pool:
        futures: list[Future[None]] = [
            pool.submit(_load_table, target, header_bytes, footer_bytes, table, loads)
            for table in order
        ]
        try:
            wait(futures, return_when=FIRST_EXCEPTION)
            if loads.error is not None:
                raise loads.error
        except BaseException:
            loads.stop()
            for future in futures:
                future.cancel()
            raise
    loads.report()
    return LoadResult(len(tables), loads.streamed, time.monotonic() - start)


def load_routines(target: DbTarget, header: Path, routines: Path, footer: Path) -> None:
    """Load the views, routines and events file, after the tables."""
    frames = [_frame(header), _frame(routines), _frame(footer)]
    run_client(target, f"'{routines.name}'", lambda pipe: pipe.write(b"".join(frames)))
