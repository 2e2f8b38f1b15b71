"""The database dump: one ``mariadb-dump`` snapshot, split while it streams into a folder.

This module owns the dump format. ``dump_database`` runs one consistent
``mariadb-dump`` and ``split_stream`` cuts its output, line by line with flat
memory, into::

    _header.sql          session settings (FOREIGN_KEY_CHECKS=0 ...), before the first section
    tables/<file>.sql    one per table: structure, rows, triggers
    _routines.sql        views, events, procedures and functions
    _footer.sql          from ``SET TIME_ZONE=@OLD_TIME_ZONE`` to ``-- Dump completed``

``cat _header.sql tables/*.sql _routines.sql _footer.sql | mariadb db`` restores
the database; ``_header + one table + _footer`` loads one table on its own.

Rows arrive one per line (``--skip-extended-insert``) and are regrouped into
multi-row INSERT statements, still one row per line, whose ends are chosen by
the rows' content (a CRC of the row, or a 4 MiB cap): a changed row changes only
its own statement, so restic's chunking finds the rest of the file unchanged.
Each table's digest (sha256 over its non-comment lines, rows, bytes) is what
``digest_file`` computes from the file again.
"""

from __future__ import annotations

import errno
import functools
import hashlib
import logging
import queue
import re
import subprocess
import tempfile
import threading
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from flowsafe import execute
from flowsafe.errors import FlowsafeError, ToolError
from flowsafe.mariadb.connection import DbTarget, client_options

log = logging.getLogger(__name__)

DUMP_OPTIONS = (
    "--single-transaction",
    "--quick",
    "--hex-blob",
    "--order-by-primary",
    "--skip-dump-date",
    "--routines",
    "--triggers",
    "--events",
    "--skip-extended-insert",
    # No LOCK TABLES in the output: tables are loaded in parallel, and a session holding
    # LOCK TABLES fails (error 1100) when another session creates a table that references
    # its table by a foreign key. InnoDB loads gain nothing from the locks.
    "--skip-add-locks",
    "--disable-keys",
    "--default-character-set=utf8mb4",
    "--max-allowed-packet=1G",
)
HEADER_FILE = "_header.sql"
ROUTINES_FILE = "_routines.sql"
FOOTER_FILE = "_footer.sql"
TABLES_DIR = "tables"

CHUNK = 1 << 20  # bytes read at a time; also the progress step
FLUSH = 1 << 20  # bytes buffered per output file before they are hashed and written
STATEMENT_LIMIT = 4 << 20  # a regrouped INSERT ends once it holds this many bytes of rows
BOUNDARY_MASK = 0x7F  # ... or after a row whose crc32 has these bits zero (1 in 128 rows)

_SEPARATOR = b"--"  # the comment line before every section marker
_TABLE_MARK = b"-- Table structure for table `"
_ROUTINE_MARKS = (
    b"-- Temporary table structure for view ",
    b"-- Final view structure for view ",
    b"-- Dumping events for database ",
    b"-- Dumping routines for database ",
)
_FOOTER_START = b"/*!40103 SET TIME_ZONE=@OLD_TIME_ZONE */;"
_DONE = b"-- Dump completed"
_DATA_MARK = b"-- Dumping data for table "
_DATA_END = b"/*!40000 ALTER TABLE "  # ... ENABLE KEYS */; closes a table's rows
# The head of a row line, with or without a column list (mariadb-dump adds one for
# tables with invisible columns): INSERT INTO `t` [(`a`, `b`) ]VALUES (
_QUOTED = rb"`(?:[^`]|``)+`"
_INSERT_HEAD = re.compile(
    rb"INSERT INTO " + _QUOTED + rb" (?:\((?:" + _QUOTED + rb"(?:, )?)+\) )?VALUES \("
)
_SAFE_NAME_BYTES = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_$-")
_MAX_FILE_STEM = 200
_SPACE_ERRNOS = (errno.ENOSPC, errno.EDQUOT)
_ERROR_HINTS = {
    "1045": "check the database user and password",
    "1049": "check the database name",
    "2002": "is the server running and is the socket right?",
    "2003": "is the server running and are host and port right?",
}


@dataclass(frozen=True)
class TableDump:
    """One table's file in the dump folder and its digest."""

    name: str
    file: str  # relative to the dump folder, like "tables/clients.sql"
    bytes: int
    rows: int
    sha256: str  # over the file's bytes without lines starting with "--"


@dataclass(frozen=True)
class DumpResult:
    """What ``split_stream`` wrote; file names are relative to the dump folder."""

    tables: list[TableDump]  # in dump order
    total_bytes: int  # written to the folder
    header_file: str
    routines_file: str
    footer_file: str


class DumpIncompleteError(FlowsafeError):
    """The dump stream stopped before mariadb-dump's ``-- Dump completed`` line."""


def dump_command(defaults_option: str, database: str) -> list[str]:
    """The mariadb-dump argv; ``defaults_option`` comes from ``client_options``."""
    return ["mariadb-dump", defaults_option, *DUMP_OPTIONS, "--", database]


def table_file_name(raw_name: bytes) -> str:
    """``tables/<name>.sql``, bytes outside ``[A-Za-z0-9_$-]`` percent-encoded.

    An encoding too long for a file name is cut and made unique with a hash.
    """
    stem = "".join(chr(b) if b in _SAFE_NAME_BYTES else f"%{b:02X}" for b in raw_name)
    if len(stem) > _MAX_FILE_STEM:
        stem = f"{stem[:_MAX_FILE_STEM - 17]}~{hashlib.sha256(raw_name).hexdigest()[:16]}"
    return f"{TABLES_DIR}/{stem}.sql"


class _Lines:
    """Reads a stream in large chunks and yields its complete lines, without newlines.

    ``rest`` is what followed the last newline once the stream is exhausted.
    """

    def __init__(self, stream: IO[bytes], on_bytes: Callable[[int], None] | None) -> None:
        self.stream = stream
        self.on_bytes = on_bytes
        self.count = 0
        self.rest = b""

    def __iter__(self) -> Iterator[list[bytes]]:
        pieces = [b""]
        while chunk := self.stream.read(CHUNK):
            self.count += len(chunk)
            pieces.append(chunk)
            if b"\n" in chunk:  # else one line spans chunks: join once it ends
                lines = b"".join(pieces).split(b"\n")
                pieces = [lines.pop()]
                yield lines
            if self.on_bytes is not None:
                self.on_bytes(self.count)
        self.rest = b"".join(pieces)


class _DataPhase:
    """Where a table's row lines are: after ``-- Dumping data``, until ``ENABLE KEYS``.

    ``head`` is the row lines' common start, learned from the first row.
    """

    def __init__(self) -> None:
        self.open = False
        self.head: bytes | None = None

    def update(self, line: bytes) -> None:
        """Account for a line that is not a row of the known head."""
        if line.startswith(_DATA_MARK):
            self.open = True
            self.head = None
        elif line.startswith(_DATA_END) and b"ENABLE KEYS" in line:
            self.open = False
            self.head = None
        elif self.open and self.head is None and (match := _INSERT_HEAD.match(line)):
            self.head = match.group()


class _Writer:
    """A thread that hashes and writes the buffers the parsing thread hands over.

    sha256 and file writes release the GIL, so they run beside the line parsing.
    The queue is short (flat memory); the first error is kept and ``check`` raises it.
    """

    def __init__(self) -> None:
        self.queue: queue.Queue[Callable[[], object] | None] = queue.Queue(maxsize=4)
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, name="dump-writer", daemon=True)

    def __enter__(self) -> _Writer:
        self.thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.queue.put(None)
        self.thread.join()

    def _run(self) -> None:
        while (task := self.queue.get()) is not None:
            try:
                task()
            except BaseException as exc:  # handed to the parsing thread by check()
                self.error = self.error or exc

    def submit(self, task: Callable[[], object]) -> None:
        self.queue.put(task)

    def check(self) -> None:
        if self.error is not None:
            raise self.error


class _Sink:
    """An output file (or, without a path, just a digest): its size and the sha256 of
    its non-comment lines. Lines are buffered here; ``_Writer`` hashes and writes them.
    """

    def __init__(self, path: Path | None, writer: _Writer) -> None:
        self.file = path.open("wb") if path is not None else None
        self.writer = writer
        self.hash = hashlib.sha256()
        self.size = 0
        self.buffer = bytearray()
        self.closed = False

    def take(self, line: bytes) -> None:
        """Append one line (given without its newline)."""
        if line.startswith(b"--"):
            self.flush()
            self._send(line + b"\n", hashed=False)
        else:
            self.buffer += line
            self.buffer += b"\n"
            if len(self.buffer) >= FLUSH:
                self.flush()

    def flush(self) -> None:
        if self.buffer:
            self._send(self.buffer, hashed=True)
            self.buffer = bytearray()

    def _send(self, data: bytes | bytearray, *, hashed: bool) -> None:
        self.size += len(data)
        self.writer.submit(functools.partial(self._consume, data, hashed))

    def _consume(self, data: bytes | bytearray, hashed: bool) -> None:
        if hashed:
            self.hash.update(data)
        if self.file is not None:
            self.file.write(data)

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self.flush()
            if self.file is not None:
                self.writer.submit(self.file.close)


class _Table(_Sink):
    """A table's file: single-row INSERT lines become content-defined multi-row INSERTs."""

    def __init__(self, out_dir: Path, raw_name: bytes, writer: _Writer) -> None:
        self.name = raw_name.decode("utf-8", "replace")
        self.relative = table_file_name(raw_name)
        super().__init__(out_dir / self.relative, writer)
        self.phase = _DataPhase()
        self.rows = 0
        self.statement = 0  # bytes of rows in the open statement; 0: none open

    def take(self, line: bytes) -> None:
        self.end_statement()
        self.phase.update(line)
        if self.phase.head is not None and line.startswith(self.phase.head):
            self.add_rows([line], 0)
        else:
            super().take(line)

    def end_statement(self) -> None:
        if self.statement:
            self.buffer += b";\n"
            self.statement = 0

    def add_rows(self, lines: list[bytes], start: int) -> int:
        """Regroup the row lines from ``lines[start]`` on; return the index after them.

        The hot loop of the dump: everything it touches is a local.
        """
        head = self.phase.head
        assert head is not None
        insert, cut = head[:-1], len(head) - 1  # rows keep their "(" and lose the ";"
        buffer, statement, crc32 = self.buffer, self.statement, zlib.crc32
        index, end = start, len(lines)
        while index < end and lines[index].startswith(head):
            row = lines[index][cut:-1]
            buffer += b",\n" if statement else insert
            buffer += row
            statement += len(row)
            if not crc32(row) & BOUNDARY_MASK or statement >= STATEMENT_LIMIT:
                buffer += b";\n"
                statement = 0
            index += 1
        self.rows += index - start
        self.statement = statement
        if len(buffer) >= FLUSH:
            self.flush()
        return index

    def close(self) -> None:
        self.end_statement()
        super().close()

    def result(self) -> TableDump:
        return TableDump(self.name, self.relative, self.size, self.rows, self.hash.hexdigest())


class _Splitter:
    """Routes dump lines to the header, a table, the routines or the footer."""

    def __init__(self, out_dir: Path, writer: _Writer) -> None:
        (out_dir / TABLES_DIR).mkdir(parents=True, exist_ok=True)
        self.out_dir = out_dir
        self.writer = writer
        self.header = _Sink(out_dir / HEADER_FILE, writer)
        self.routines = _Sink(out_dir / ROUTINES_FILE, writer)
        self.footer: _Sink | None = None
        self.current = self.header
        self.table: _Table | None = None
        self.tables: list[_Table] = []
        self.separator = False  # a "--" line waits: it belongs to the section the next line starts

    def feed(self, lines: list[bytes]) -> None:
        index, end = 0, len(lines)
        while index < end:
            table = self.table
            if (
                table is not None
                and not self.separator
                and (head := table.phase.head) is not None
                and lines[index].startswith(head)
            ):
                index = table.add_rows(lines, index)
            else:
                self._other(lines[index])
                index += 1

    def _other(self, line: bytes) -> None:
        if self.separator:
            self.separator = False
            self._enter_section(line)
            self.current.take(_SEPARATOR)
        if line == _SEPARATOR and self.footer is None:
            self.separator = True
        elif line == _FOOTER_START and self.footer is None:
            self.footer = _Sink(self.out_dir / FOOTER_FILE, self.writer)
            self._switch(self.footer)
            self.footer.take(line)
        else:
            self.current.take(line)

    def _enter_section(self, marker: bytes) -> None:
        if marker.startswith(_TABLE_MARK):
            name = marker[len(_TABLE_MARK):-1].replace(b"``", b"`")
            table = _Table(self.out_dir, name, self.writer)
            self.tables.append(table)
            self._switch(table)
        elif marker.startswith(_ROUTINE_MARKS):
            self._switch(self.routines)

    def _switch(self, sink: _Sink) -> None:
        if self.table is not None:
            self.table.close()
        self.current = sink
        self.table = sink if isinstance(sink, _Table) else None

    def close(self) -> None:
        for sink in (self.header, *self.tables, self.routines, self.footer):
            if sink is not None:
                sink.close()

    def result(self) -> DumpResult:
        sinks = [self.header, *self.tables, self.routines, self.footer]
        return DumpResult(
            tables=[table.result() for table in self.tables],
            total_bytes=sum(sink.size for sink in sinks if sink is not None),
            header_file=HEADER_FILE,
            routines_file=ROUTINES_FILE,
            footer_file=FOOTER_FILE,
        )


def split_stream(
    stream: IO[bytes], out_dir: Path, on_bytes: Callable[[int], None] | None = None
) -> DumpResult:
    """Split a mariadb-dump stream into ``out_dir``; raise unless it ended cleanly.

    ``on_bytes`` gets the number of bytes read so far, once per MiB read.
    """
    reader = _Lines(stream, on_bytes)
    last = b""
    try:
        with _Writer() as writer:
            splitter = _Splitter(out_dir, writer)
            try:
                for lines in reader:
                    splitter.feed(lines)
                    writer.check()
                    last = lines[-1]
                if splitter.separator:
                    splitter.current.take(_SEPARATOR)
                if reader.rest:
                    splitter.current.take(reader.rest)
            finally:
                splitter.close()
        writer.check()
    except OSError as exc:
        if exc.errno in _SPACE_ERRNOS:
            raise FlowsafeError(
                f"no space left on device while writing the database dump to {out_dir}: "
                "free space or move state_dir"
            ) from None
        raise
    if reader.rest or splitter.footer is None or not last.startswith(_DONE):
        raise DumpIncompleteError(
            f"mariadb-dump output ended early (after {reader.count} bytes, without its "
            "'-- Dump completed' line): the dump is incomplete; check the MariaDB server and "
            "run the backup again"
        )
    return splitter.result()


def _stderr_tail(stderr: IO[bytes]) -> str:
    stderr.seek(max(0, stderr.seek(0, 2) - 65536))
    return execute.tail(stderr.read())


def _failure(code: int, stderr: IO[bytes]) -> ToolError:
    """mariadb-dump's exit code and the end of its stderr, with a hint for common errors."""
    stderr_tail = _stderr_tail(stderr)
    hint = next((hint for num, hint in _ERROR_HINTS.items() if f"{num}:" in stderr_tail), "")
    return ToolError("mariadb-dump", code, stderr_tail, hint)


def dump_database(
    target: DbTarget, out_dir: Path, *, on_bytes: Callable[[int], None] | None = None
) -> DumpResult:
    """Dump ``target.database`` with one mariadb-dump run into ``out_dir`` (see module doc).

    On failure ``out_dir`` holds partial files; the caller removes it.
    """
    with client_options(target) as (option, fd), tempfile.TemporaryFile() as errors:
        process = execute.spawn(
            dump_command(option, target.database),
            stdout=subprocess.PIPE,
            stderr=errors.fileno(),
            pass_fds=[fd],
        )
        assert process.stdout is not None
        try:
            with process.stdout:
                result = split_stream(process.stdout, out_dir, on_bytes)
        except BaseException as exc:
            process.kill()
            code = process.wait()
            if isinstance(exc, DumpIncompleteError) and code > 0:
                raise _failure(code, errors) from None
            raise
        code = process.wait()
        if code != 0:
            raise _failure(code, errors)
        if warnings := _stderr_tail(errors):
            log.debug("mariadb-dump stderr: %s", warnings)
    return result


def digest_file(path: Path) -> tuple[str, int, int]:
    """(sha256, rows, bytes) of a table file, as ``split_stream`` reported them."""
    phase = _DataPhase()
    rows = 0
    continued = False  # the previous row line ended with "," so this line is a row too
    with path.open("rb") as file, _Writer() as writer:
        sink = _Sink(None, writer)
        reader = _Lines(file, None)
        for lines in reader:
            for line in lines:
                sink.take(line)
                if not continued and not (phase.head and line.startswith(phase.head)):
                    phase.update(line)
                if continued or (phase.head is not None and line.startswith(phase.head)):
                    rows += 1
                    continued = line.endswith(b",")
        if reader.rest:
            sink.take(reader.rest)
        sink.close()
    return sink.hash.hexdigest(), rows, reader.count
