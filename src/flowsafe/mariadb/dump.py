"""The database dump: one ``mariadb-dump`` snapshot, split while it streams into a folder.

This module owns the dump format. ``dump_database`` runs one consistent
``mariadb-dump`` and ``split_stream`` cuts its output, with flat memory, into::

    _header.sql          session settings (FOREIGN_KEY_CHECKS=0 ...), before the first section
    tables/<file>.sql    one per table or sequence: structure, rows, triggers
    _routines.sql        views, events, procedures and functions
    _footer.sql          from ``SET TIME_ZONE=@OLD_TIME_ZONE`` to ``-- Dump completed``

The cut follows the dump's statements (``statements.Splitter``): a marker comment
starts a new file only between statements, never inside one (a procedure body is
one statement), and every statement must be of a kind its file may hold
(``statements.classify_*``), else the backup stops: nothing a hostile database
smuggles into a dump reaches a snapshot. A table file has up to three *parts*,
each cut into *chunks* that end between statements: ``ddl`` (DROP/CREATE TABLE
and its SETs), ``rows`` (INSERTs only, chunks of about ``ROWS_CHUNK`` bytes) and
``post`` (triggers and their SETs). Every chunk's SHA-256 goes into the manifest,
so a restore checks each chunk before any of it reaches a server, and loads the
rows chunks of one table in parallel.

Rows arrive one per line (``--skip-extended-insert``) and are regrouped into
multi-row INSERT statements, still one row per line, whose ends are chosen by the
rows' content (a CRC of the row), so a changed row changes only its own statement
and restic's chunking finds the rest of the file unchanged. A statement never
grows past ``STATEMENT_LIMIT`` by taking another row: a longer row stands alone,
as mariadb-dump writes it.
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
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Literal, Protocol

from flowsafe import execute
from flowsafe.errors import FlowsafeError, ToolError
from flowsafe.mariadb import statements
from flowsafe.mariadb.connection import DbTarget, client_options
from flowsafe.mariadb.statements import Statement, UnsafeStatementError

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
    "--dump-history",  # system-versioned tables keep their history
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
ROWS_CHUNK = 8 << 20  # a rows chunk ends at the first statement end past this size
STATEMENT_LIMIT = 4 << 20  # a regrouped INSERT takes no row that would make it longer
BOUNDARY_MASK = 0x7F  # ... and ends after a row whose crc32 has these bits zero (1 in 128)

Part = Literal["all", "ddl", "rows", "post"]
FileKind = Literal["header", "table", "sequence", "routines", "footer"]

_SEPARATOR = b"--"  # the comment line before every section marker
_SECTION_MARKS: tuple[tuple[bytes, FileKind], ...] = (
    (b"-- Table structure for table `", "table"),
    (b"-- Sequence structure for `", "sequence"),
    (b"-- Temporary table structure for view ", "routines"),
    (b"-- Final view structure for view ", "routines"),
    (b"-- Dumping events for database ", "routines"),
    (b"-- Dumping routines for database ", "routines"),
)
_DATA_MARK = b"-- Dumping data for table "
_FOOTER_START = b"/*!40103 SET TIME_ZONE=@OLD_TIME_ZONE */;"
_DONE = b"-- Dump completed"
# The head of a row line, with or without a column list (mariadb-dump adds one for
# tables with invisible or history columns): INSERT INTO `t` [(`a`, b) ]VALUES (
_QUOTED = rb"`(?:[^`]|``)+`"
_COLUMN = rb"(?:`(?:[^`]|``)+`|\w+)"
_INSERT_HEAD = re.compile(
    rb"INSERT INTO (?P<name>" + _QUOTED + rb") (?:\((?:" + _COLUMN + rb"(?:, )?)+\) )?VALUES \("
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
class ChunkDump:
    """A run of whole statements in a dump file: where it is and its SHA-256."""

    part: Part
    offset: int
    bytes: int
    rows: int
    sha256: str


@dataclass(frozen=True)
class FileDump:
    """One file of the dump folder: what it holds, its chunks, and the objects in it."""

    kind: FileKind
    name: str  # the table or sequence; "" for header, routines, footer
    file: str  # relative to the dump folder, like "tables/clients.sql"
    bytes: int
    rows: int
    chunks: list[ChunkDump]
    objects: dict[str, list[str]]  # "trigger", "view", "procedure", ... -> names

    @property
    def sha256(self) -> str:
        """The whole file's digest: SHA-256 over its chunks' digests."""
        return digest_of(self.chunks)

    @property
    def rows_sha256(self) -> str:
        """The rows' digest (rows chunks only): equal for equal rows, whatever the DDL."""
        return digest_of([c for c in self.chunks if c.part == "rows"])


class Digested(Protocol):
    """Anything with a hex SHA-256 (a chunk of a dump, or its manifest entry)."""

    @property
    def sha256(self) -> str: ...


def digest_of(chunks: Sequence[Digested]) -> str:
    """SHA-256 over the hex digests of ``chunks``, in order."""
    total = hashlib.sha256()
    for chunk in chunks:
        total.update(chunk.sha256.encode())
    return total.hexdigest()


@dataclass(frozen=True)
class DumpResult:
    """What ``split_stream`` wrote, in load order: header, tables, routines, footer."""

    files: list[FileDump]
    total_bytes: int
    longest_statement: int

    @property
    def tables(self) -> list[FileDump]:
        return [f for f in self.files if f.kind in ("table", "sequence")]

    def objects(self) -> dict[str, list[str]]:
        """Every non-table object of the dump by kind (trigger, view, ...), names sorted."""
        found: dict[str, set[str]] = {}
        for dumped in self.files:
            for kind, names in dumped.objects.items():
                found.setdefault(kind, set()).update(names)
        found.setdefault("sequence", set()).update(f.name for f in self.files
                                                   if f.kind == "sequence")
        return {kind: sorted(names) for kind, names in sorted(found.items()) if names}


class DumpIncompleteError(FlowsafeError):
    """The dump stream stopped before mariadb-dump's ``-- Dump completed`` line."""


def dump_command(defaults_option: str, database: str, tables: Sequence[str] = ()) -> list[str]:
    """The mariadb-dump argv; ``defaults_option`` comes from ``client_options``."""
    return ["mariadb-dump", defaults_option, *DUMP_OPTIONS, "--", database, *tables]


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


@dataclass
class _OpenChunk:
    part: Part
    offset: int
    hash: hashlib._Hash = field(default_factory=hashlib.sha256)
    bytes: int = 0
    rows: int = 0


class _Sink:
    """One output file: bytes buffered here, hashed per chunk and written by ``_Writer``.

    A chunk is cut with ``cut(part)``; the caller only cuts between statements.
    """

    def __init__(self, kind: FileKind, name: str, relative: str, path: Path,
                 writer: _Writer) -> None:
        self.kind: FileKind = kind
        self.name = name
        self.relative = relative
        self.file = path.open("wb")
        self.writer = writer
        self.size = 0
        self.buffer = bytearray()
        self.chunk = _OpenChunk("all" if kind != "table" and kind != "sequence" else "ddl", 0)
        self.chunks: list[ChunkDump] = []
        self.objects: dict[str, list[str]] = {}
        self.closed = False

    def take(self, line: bytes) -> None:
        """Append one line (given without its newline)."""
        self.buffer += line
        self.buffer += b"\n"
        if len(self.buffer) >= FLUSH:
            self.flush()

    def flush(self) -> None:
        if self.buffer:
            data, self.buffer = self.buffer, bytearray()
            self.size += len(data)
            self.chunk.bytes += len(data)
            self.writer.submit(functools.partial(self._consume, self.chunk.hash, data))

    def _consume(self, digest: hashlib._Hash, data: bytearray) -> None:
        digest.update(data)
        self.file.write(data)

    def cut(self, part: Part) -> None:
        """End the open chunk here (if it holds anything) and open one of ``part``."""
        self.flush()
        if self.chunk.bytes:
            done = self.chunk
            result: list[ChunkDump] = self.chunks

            def record(done: _OpenChunk = done) -> None:
                result.append(ChunkDump(done.part, done.offset, done.bytes, done.rows,
                                        done.hash.hexdigest()))

            self.writer.submit(record)
        self.chunk = _OpenChunk(part, self.size)

    def note(self, kind: str, name: str) -> None:
        names = self.objects.setdefault(kind, [])
        if name not in names:
            names.append(name)

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self.cut(self.chunk.part)
            self.writer.submit(self.file.close)

    def result(self) -> FileDump:
        rows = sum(c.rows for c in self.chunks)
        return FileDump(self.kind, self.name, self.relative, self.size, rows, list(self.chunks),
                        {k: sorted(v) for k, v in self.objects.items()})


class _Table(_Sink):
    """A table's file: single-row INSERT lines become content-defined multi-row INSERTs."""

    def __init__(self, kind: FileKind, raw_name: bytes, out_dir: Path, writer: _Writer) -> None:
        relative = table_file_name(raw_name)
        super().__init__(kind, raw_name.decode("utf-8", "replace"), relative,
                         out_dir / relative, writer)
        self.data = False  # past "-- Dumping data for table": rows may follow
        self.head: bytes | None = None  # the row lines' common start, from the first row
        self.statement = 0  # bytes of rows in the open statement; 0: none open
        self.longest = 0

    def is_row(self, line: bytes) -> bool:
        """Whether a line (seen between statements) is one of this table's row lines."""
        if not self.data or not line.endswith(b");"):
            return False
        if self.head is None:
            match = _INSERT_HEAD.match(line)
            if match is None or statements.unquote(match.group("name")) != self.name:
                return False
            self.head = match.group()
        return line.startswith(self.head)

    def end_statement(self) -> None:
        if self.statement:
            self.buffer += b";\n"
            self.longest = max(self.longest, self.statement + len(self.head or b""))
            self.statement = 0
            if self.chunk.bytes + len(self.buffer) >= ROWS_CHUNK:
                self.cut("rows")

    def add_rows(self, lines: list[bytes], start: int) -> int:
        """Regroup the row lines from ``lines[start]`` on; return the index after them.

        The hot loop of the dump: everything it touches is a local.
        """
        head = self.head
        assert head is not None
        if self.chunk.part != "rows":
            self.cut("rows")
        insert, cut = head[:-1], len(head) - 1  # rows keep their "(" and lose the ";"
        buffer, statement, crc32 = self.buffer, self.statement, zlib.crc32
        limit, longest = STATEMENT_LIMIT, self.longest
        index, end = start, len(lines)
        while index < end:
            line = lines[index]
            if not (line.startswith(head) and line.endswith(b");")):
                break
            row = line[cut:-1]
            if statement and statement + len(row) > limit:
                buffer += b";\n"
                longest = max(longest, statement + cut)
                statement = 0
            buffer += b",\n" if statement else insert
            buffer += row
            statement += len(row)
            if not crc32(row) & BOUNDARY_MASK:
                buffer += b";\n"
                longest = max(longest, statement + cut)
                statement = 0
            if not statement and self.chunk.bytes + len(buffer) >= ROWS_CHUNK:
                self.chunk.rows += index + 1 - start
                self.cut("rows")
                start = index + 1
                buffer = self.buffer
            index += 1
        self.chunk.rows += index - start
        self.statement = statement
        self.longest = longest
        if len(buffer) >= FLUSH:
            self.flush()
        return index

    def close(self) -> None:
        self.end_statement()
        super().close()


class _Splitter:
    """Routes dump lines to the header, a table, the routines or the footer, statement by
    statement, and checks each statement against what its file may hold."""

    def __init__(self, out_dir: Path, writer: _Writer) -> None:
        (out_dir / TABLES_DIR).mkdir(parents=True, exist_ok=True)
        self.out_dir = out_dir
        self.writer = writer
        self.sql = statements.Splitter()
        self.header = self._sink("header", HEADER_FILE)
        self.routines = self._sink("routines", ROUTINES_FILE)
        self.footer: _Sink | None = None
        self.current: _Sink = self.header
        self.table: _Table | None = None
        self.tables: list[_Table] = []
        self.separator = False  # a "--" line waits: it belongs to the section the next line starts
        self.longest = 0
        self.on_section: Callable[[], None] | None = None

    def _sink(self, kind: FileKind, relative: str) -> _Sink:
        return _Sink(kind, "", relative, self.out_dir / relative, self.writer)

    def feed(self, lines: list[bytes]) -> None:
        index, end = 0, len(lines)
        while index < end:
            table = self.table
            if (table is not None and not self.separator and self.sql.between
                    and table.is_row(lines[index])):
                before = index
                index = table.add_rows(lines, index)
                self.sql.line += index - before
            else:
                self._other(lines[index])
                index += 1

    def _other(self, line: bytes) -> None:
        if (table := self.table) is not None:
            table.end_statement()
            if table.chunk.part == "rows":
                table.cut("post")  # any line that is not a row ends the rows
        if self.separator:
            self.separator = False
            self._enter_section(line)
            self.current.take(_SEPARATOR)
        between = self.sql.between
        if between and line == _SEPARATOR and self.footer is None:
            self.separator = True
            self.sql.line += 1
            return
        if between and line == _FOOTER_START and self.footer is None:
            self.footer = self._sink("footer", FOOTER_FILE)
            self._switch(self.footer)
        if between and self.table is not None and line.startswith(_DATA_MARK):
            self.table.data = True
        done = self.sql.feed(line + b"\n")
        self.current.take(line)
        for statement in done:
            self._check(statement)

    def _check(self, statement: Statement) -> None:
        """Refuse a statement its file may not hold; note the objects a file creates."""
        sink = self.current
        self.longest = max(self.longest, len(statement.code))
        if isinstance(sink, _Table):
            kind = statements.classify_table_statement(statement, sink.name)
            if kind.verb == "trigger":
                sink.note("trigger", kind.name)
            elif kind.verb == "keys" and sink.chunk.part == "ddl" and b"ENABLE" in \
                    statement.code.upper():
                sink.cut("post")  # a table without rows: its triggers follow here
            elif kind.verb == "insert" and sink.chunk.part != "rows":
                raise UnsafeStatementError(
                    f"line {statement.line}: a row of table '{sink.name}' outside its data")
        elif sink.kind == "routines":
            kind = statements.classify_routines_statement(statement)
            if kind.verb in ("view", "procedure", "function", "event"):
                sink.note(kind.verb, kind.name)
        else:
            statements.classify_session_statement(statement)

    def _enter_section(self, marker: bytes) -> None:
        for mark, kind in _SECTION_MARKS:
            if marker.startswith(mark):
                if kind == "routines":
                    self._switch(self.routines)
                else:
                    name = marker[len(mark):-1].replace(b"``", b"`")
                    table = _Table(kind, name, self.out_dir, self.writer)
                    self.tables.append(table)
                    self._switch(table)
                    if self.on_section is not None:
                        self.on_section()
                        self.on_section = None
                return

    def _switch(self, sink: _Sink) -> None:
        if self.table is not None:
            self.longest = max(self.longest, self.table.longest)
            self.table.close()
        self.current = sink
        self.table = sink if isinstance(sink, _Table) else None

    def close(self) -> None:
        for sink in (self.header, *self.tables, self.routines, self.footer):
            if sink is not None:
                if isinstance(sink, _Table):
                    self.longest = max(self.longest, sink.longest)
                sink.close()

    def result(self) -> DumpResult:
        sinks = [self.header, *self.tables, self.routines, self.footer]
        files = [sink.result() for sink in sinks if sink is not None]
        return DumpResult(files=files, total_bytes=sum(f.bytes for f in files),
                          longest_statement=self.longest)


def split_stream(
    stream: IO[bytes], out_dir: Path, on_bytes: Callable[[int], None] | None = None,
    on_section: Callable[[], None] | None = None,
) -> DumpResult:
    """Split a mariadb-dump stream into ``out_dir``; raise unless it ended cleanly.

    ``on_bytes`` gets the number of bytes read so far, once per MiB read;
    ``on_section`` is called once, when the first table or sequence starts (by then
    mariadb-dump's consistent snapshot exists).
    """
    reader = _Lines(stream, on_bytes)
    last = b""
    try:
        with _Writer() as writer:
            splitter = _Splitter(out_dir, writer)
            splitter.on_section = on_section
            try:
                for lines in reader:
                    splitter.feed(lines)
                    writer.check()
                    last = lines[-1]
                if splitter.separator:
                    splitter.current.take(_SEPARATOR)
                if reader.rest:
                    splitter.current.take(reader.rest)
                splitter.sql.finish()
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
    if splitter.on_section is not None:
        splitter.on_section()
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
    target: DbTarget, out_dir: Path, *, on_bytes: Callable[[int], None] | None = None,
    on_section: Callable[[], None] | None = None, tables: Sequence[str] = (),
) -> DumpResult:
    """Dump ``target.database`` (or only ``tables`` of it) with one mariadb-dump run into
    ``out_dir`` (see module doc). On failure ``out_dir`` holds partial files; the caller
    removes it. A statement the dump may not hold raises ``UnsafeStatementError``."""
    with client_options(target) as (option, fd), tempfile.TemporaryFile() as errors:
        process = execute.spawn(
            dump_command(option, target.database, tables),
            stdout=subprocess.PIPE,
            stderr=errors.fileno(),
            pass_fds=[fd],
        )
        assert process.stdout is not None
        try:
            with process.stdout:
                result = split_stream(process.stdout, out_dir, on_bytes, on_section)
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
