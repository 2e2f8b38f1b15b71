"""Loading a dump (the files ``dump.py`` writes) into a database: checked, and fast.

Nothing reaches the server unchecked: each chunk of each file is read whole, its
SHA-256 compared with the manifest, and only then cut into statements, each of
which must be of a kind its file may hold (``statements.classify_*``). Statements
go one per query over PyMySQL (no multi-statements, no LOCAL INFILE, no client
commands at all), as an account that can touch only the target database (see
``accounts.py``), and what is sent is the statement's checked ``code``.

Fast, as myloader is: ``jobs`` sessions take rows chunks from a short queue, so a
big table loads through every session at once while the files stream in (from a
folder, or from the tar stream of one ``restic dump``, read as it arrives);
each chunk is one transaction (one log flush per chunk, not per statement);
foreign key checks are off; a big table gets its secondary indexes and foreign
keys after its rows (``indexes.py``). Each table's inserted row count must equal
the manifest's. Triggers, views, routines and events are not created here: they
come back as ``Objects`` for the caller to create with the right DEFINER
(``restore/objects.py``), in the scratch database or inside a swap.

Any failure stops every session (``KILL QUERY``) and raises the first error.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import queue
import tarfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Protocol

import pymysql
from pymysql.constants import CLIENT

from flowsafe.errors import FlowsafeError, ToolError, VerificationError
from flowsafe.manifest import ChunkEntry, DumpFileEntry
from flowsafe.mariadb import statements
from flowsafe.mariadb.connection import DbTarget, connect
from flowsafe.mariadb.indexes import defer_indexes
from flowsafe.mariadb.statements import Statement, UnsafeStatementError

log = logging.getLogger(__name__)

DEFER_INDEXES_FROM = 16 << 20  # tables with at least this many dump bytes: indexes after rows
PROGRESS_STEP = 4 << 20
TAR_BUFFER = 1 << 20


class Source(Protocol):
    """Where the dump's bytes come from: (path relative to the staging folder, reader)."""

    def files(self) -> Iterator[tuple[str, IO[bytes]]]: ...


@dataclass(frozen=True)
class FolderSource:
    """Dump files on disk, below ``folder`` (the staging folder), in manifest order."""

    folder: Path
    entries: Sequence[DumpFileEntry]

    def files(self) -> Iterator[tuple[str, IO[bytes]]]:
        for entry in self.entries:
            try:
                with (self.folder / entry.file).open("rb") as reader:
                    yield entry.file, reader
            except FileNotFoundError:
                raise VerificationError(f"'{entry.file}' is missing from the snapshot") from None


@dataclass(frozen=True)
class TarSource:
    """The tar stream ``restic dump`` writes for a folder; ``prefix`` is the staging
    folder's path in the snapshot (member names are ``<prefix>/db/...``)."""

    stream: IO[bytes]
    prefix: str

    def files(self) -> Iterator[tuple[str, IO[bytes]]]:
        lead = self.prefix.strip("/") + "/"
        # large reads: tarfile's default 10 KiB records cost a Python loop each (breaks:
        # see restic.dump_stream)
        with tarfile.open(fileobj=self.stream, mode="r|", bufsize=TAR_BUFFER) as tar:
            for member in tar:
                if not member.isfile() or not member.name.startswith(lead):
                    continue
                reader = tar.extractfile(member)
                if reader is not None:
                    yield member.name[len(lead):], reader


@dataclass(frozen=True)
class Script:
    """Statements to run in order in one session: SETs around CREATEs (and the DROP ...
    IF EXISTS that mariadb-dump puts between a view's placeholder and its definition)."""

    statements: list[Statement]


@dataclass
class Objects:
    """What a dump creates besides tables: a trigger script per table, the routines
    file's script (views, procedures, functions, events)."""

    triggers: list[Script] = field(default_factory=list)
    routines: Script | None = None


@dataclass(frozen=True)
class LoadResult:
    """How many tables, rows and bytes were loaded, how long it took, what is left to create.

    ``phases`` splits the time: ``reading`` (waiting for the stream and checking digests),
    ``waiting`` (every session busy: the server is the limit), ``indexes`` (building the
    secondary indexes after the rows, summed over sessions) and ``checks`` (``on_table``).
    """

    tables: int
    rows: int
    bytes: int
    seconds: float
    objects: Objects
    phases: dict[str, float] = field(default_factory=dict)


TableDone = Callable[[DumpFileEntry, "pymysql.Connection[Any]"], None]


@dataclass(frozen=True)
class LoadOptions:
    """How to load: sessions, index deferral, progress and a per-table hook.

    ``on_table`` runs in a loading session once a table is complete (rows, indexes),
    with that session's connection: the drill checks each table there while others
    still load.
    """

    jobs: int = 2
    defer_indexes_from: int = DEFER_INDEXES_FROM
    unique_checks: bool = True
    on_bytes: Callable[[int], None] | None = None
    on_table: TableDone | None = None


def open_session(target: DbTarget) -> pymysql.Connection[Any]:
    """A loading session: one statement per query, no LOCAL INFILE, 1 GiB packets."""
    conn = connect(target, autocommit=False, max_allowed_packet=1 << 30)
    assert not conn.client_flag & (CLIENT.MULTI_STATEMENTS | CLIENT.LOCAL_FILES)
    return conn


def server_error(exc: pymysql.err.MySQLError, what: str) -> ToolError:
    """A driver error as a ToolError naming ``what`` (the server's message only: it never
    echoes values)."""
    number = exc.args[0] if exc.args else 0
    message = str(exc.args[1]) if len(exc.args) > 1 else str(exc)
    return ToolError("mariadb", number, message.splitlines()[0][:300], f"loading {what}")


def run(conn: pymysql.Connection[Any], code: bytes, what: str) -> int:
    """Run one statement; a server error becomes a ToolError naming ``what``."""
    try:
        return int(conn.query(code))
    except pymysql.err.MySQLError as exc:
        raise server_error(exc, what) from None


def _read_exact(reader: IO[bytes], size: int) -> bytes:
    parts, left = [], size
    while left:
        piece = reader.read(min(left, 8 << 20))
        if not piece:
            break
        parts.append(piece)
        left -= len(piece)
    return b"".join(parts)


def verified_chunks(entry: DumpFileEntry, reader: IO[bytes]
                    ) -> Iterator[tuple[ChunkEntry, bytes]]:
    """Each chunk of a file, read whole and checked against the manifest before use."""
    what = f"'{entry.name or entry.file}'"
    for number, chunk in enumerate(entry.chunks, 1):
        data = _read_exact(reader, chunk.bytes)
        if len(data) != chunk.bytes or hashlib.sha256(data).hexdigest() != chunk.sha256:
            raise VerificationError(
                f"{what}: chunk {number} of its dump file differs from the manifest (damaged "
                "or altered backup)")
        yield chunk, data
    if reader.read(1):
        raise VerificationError(f"{what}: its dump file is longer than the manifest says "
                                "(damaged or altered backup)")


def chunk_statements(data: bytes, server_version: int) -> list[Statement]:
    """The statements of a DDL, post, header, footer or routines chunk."""
    return statements.split_text(data, server_version)


def rows_statements(data: bytes) -> Iterator[bytes]:
    """The INSERTs of a rows chunk: one per ``);`` at a line end (rows never hold a raw
    newline: mariadb-dump writes it as ``\\n``)."""
    pos, end = 0, len(data)
    while pos < end:
        stop = data.find(b");\n", pos)
        if stop < 0:
            raise UnsafeStatementError("a rows chunk does not end with a complete INSERT")
        yield data[pos:stop + 2]
        pos = stop + 3


@dataclass
class _Table:
    entry: DumpFileEntry
    head: bytes
    preamble: list[bytes] = field(default_factory=list)  # the ddl part's SETs, for each session
    alter: bytes | None = None
    triggers: list[Statement] = field(default_factory=list)
    pending: int = 0
    dispatched: bool = False
    rows: int = 0


class _Loading:
    """The sessions of one load, their queue, and the first error."""

    def __init__(self, target: DbTarget, options: LoadOptions, session_sql: list[bytes]) -> None:
        self.target = target
        self.options = options
        self.session_sql = session_sql
        self.lock = threading.Lock()
        self.tasks: queue.Queue[tuple[_Table, bytes | None] | None] = queue.Queue(
            maxsize=max(1, options.jobs))
        self.error: BaseException | None = None
        self.sessions: list[pymysql.Connection[Any]] = []
        self.workers: list[threading.Thread] = []
        self.rows = 0
        self.tables = 0
        self.phases = {"reading": 0.0, "waiting": 0.0, "indexes": 0.0, "checks": 0.0}

    def spent(self, phase: str, since: float) -> None:
        with self.lock:
            self.phases[phase] += time.monotonic() - since

    def session(self) -> pymysql.Connection[Any]:
        conn = open_session(self.target)
        with self.lock:
            self.sessions.append(conn)
        for code in self.session_sql:
            run(conn, code, "the dump's session settings")
        with conn.cursor() as cur:
            cur.execute("SET SESSION foreign_key_checks = 0, unique_checks = %s",
                        (1 if self.options.unique_checks else 0,))
            # not every account may turn the binary log off: then the load is logged
            with contextlib.suppress(pymysql.err.OperationalError):
                cur.execute("SET SESSION sql_log_bin = 0")
        return conn

    def start(self) -> None:
        for number in range(max(1, self.options.jobs)):
            worker = threading.Thread(target=self._work, name=f"load-{number}", daemon=True)
            worker.start()
            self.workers.append(worker)

    def _work(self) -> None:
        conn: pymysql.Connection[Any] | None = None
        while (task := self.tasks.get()) is not None:
            if self.error is not None:
                continue
            try:
                if conn is None:
                    conn = self.session()
                table, data = task
                if data is None:
                    self._finish(conn, table)
                else:
                    self._rows(conn, table, data)
            except BaseException as exc:
                self.fail(exc)

    def _rows(self, conn: pymysql.Connection[Any], table: _Table, data: bytes) -> None:
        what = f"table '{table.entry.name}'"
        for code in table.preamble:
            run(conn, code, what)
        count = 0
        for statement in rows_statements(data):
            if not statement.startswith(table.head):
                raise UnsafeStatementError(f"{what}: a rows chunk holds something that is not "
                                           "an INSERT into this table")
            count += run(conn, statement, what)
        conn.commit()
        with self.lock:
            table.rows += count
            table.pending -= 1
            last = table.pending == 0 and table.dispatched
        if last:
            self._finish(conn, table)

    def _finish(self, conn: pymysql.Connection[Any], table: _Table) -> None:
        entry = table.entry
        if table.alter is not None:
            started = time.monotonic()
            run(conn, table.alter, f"the indexes of table '{entry.name}'")
            self.spent("indexes", started)
        if table.rows != entry.rows:
            raise VerificationError(f"table '{entry.name}': {table.rows} rows were loaded, the "
                                    f"backup has {entry.rows}")
        if self.options.on_table is not None:
            started = time.monotonic()
            self.options.on_table(entry, conn)
            self.spent("checks", started)
        with self.lock:
            self.rows += table.rows
            self.tables += 1

    def submit(self, task: tuple[_Table, bytes | None]) -> None:
        started = time.monotonic()
        while True:
            self.check()
            try:
                self.tasks.put(task, timeout=0.2)
                self.spent("waiting", started)
                return
            except queue.Full:
                continue

    def dispatched(self, table: _Table) -> None:
        with self.lock:
            table.dispatched = True
            idle = table.pending == 0
        if idle:
            self.submit((table, None))

    def fail(self, error: BaseException) -> None:
        if isinstance(error, pymysql.err.MySQLError):  # a commit, a session setting
            error = server_error(error, "the dump (a loading session)")
        with self.lock:
            if self.error is None:
                self.error = error
        self.interrupt()

    def check(self) -> None:
        if self.error is not None:
            raise self.error

    def interrupt(self) -> None:
        """Stop whatever the sessions run now (KILL QUERY from a connection of its own)."""
        with self.lock:
            ids = [s.thread_id() for s in self.sessions if s.open]  # type: ignore[no-untyped-call]
        if not ids:
            return
        try:
            with connect(self.target) as killer, killer.cursor() as cur:
                for thread in ids:
                    with contextlib.suppress(pymysql.err.MySQLError):  # already gone
                        cur.execute(f"KILL QUERY {int(thread)}")
        except FlowsafeError:
            pass  # the server is gone: so are the queries

    def close(self, graceful: bool) -> None:
        if not graceful:
            self.fail(self.error or FlowsafeError("the load was interrupted"))
        for _ in self.workers:
            self.tasks.put(None)
        for worker in self.workers:
            worker.join()
        for conn in self.sessions:
            with contextlib.suppress(pymysql.err.Error):
                conn.close()


class _Plan:
    """What the load has seen of the manifest's files so far."""

    def __init__(self, entries: Sequence[DumpFileEntry]) -> None:
        self.by_file = {e.file: e for e in entries}
        self.seen: set[str] = set()

    def entry(self, relative: str) -> DumpFileEntry | None:
        entry = self.by_file.get(relative)
        if entry is not None:
            if relative in self.seen:
                raise VerificationError(f"'{relative}' appears twice in the snapshot")
            self.seen.add(relative)
        return entry

    def missing(self) -> list[str]:
        return sorted(set(self.by_file) - self.seen)


def _session_sql(entry: DumpFileEntry, data: bytes, version: int) -> list[bytes]:
    codes = []
    for statement in chunk_statements(data, version):
        statements.classify_session_statement(statement)
        codes.append(statement.code)
    return codes


def load_dump(target: DbTarget, entries: Sequence[DumpFileEntry], source: Source,
              options: LoadOptions, server_version: int = statements.DEFAULT_SERVER_VERSION
              ) -> LoadResult:
    """Load every file of ``entries`` (a manifest's, in load order) from ``source`` into
    ``target.database``; see the module doc. The header must arrive before any table."""
    started = time.monotonic()
    plan = _Plan(entries)
    objects = Objects()
    loading: _Loading | None = None
    control: pymysql.Connection[Any] | None = None
    done = 0
    reported = 0
    graceful = False
    try:
        for relative, reader in source.files():
            entry = plan.entry(relative)
            if entry is None:
                log.debug("not in the manifest, not loaded: %s", relative)
                continue
            if entry.kind in ("table", "sequence") and loading is None:
                raise VerificationError("the snapshot's dump files came out of order (a table "
                                        "before the header); nothing was loaded")
            table = None
            reading = time.monotonic()
            for chunk, data in verified_chunks(entry, reader):
                if loading is not None:
                    loading.spent("reading", reading)
                done += len(data)
                if entry.kind == "header":
                    loading = _Loading(target, options, _session_sql(entry, data,
                                                                     server_version))
                    loading.start()
                    control = loading.session()
                elif entry.kind == "footer":
                    _session_sql(entry, data, server_version)
                elif entry.kind == "routines":
                    objects.routines = _routines(data, server_version)
                else:
                    assert loading is not None and control is not None
                    if table is None:
                        table = _Table(entry, b"INSERT INTO "
                                       + statements.quote_name(entry.name).encode() + b" ")
                    _table_chunk(loading, control, table, chunk, data, server_version)
                if options.on_bytes is not None and done - reported >= PROGRESS_STEP:
                    reported = done
                    options.on_bytes(done)
                reading = time.monotonic()
            if table is not None:
                assert loading is not None
                if any(s.code.lstrip()[:6].upper() == b"CREATE" for s in table.triggers):
                    objects.triggers.append(Script(table.triggers))
                loading.dispatched(table)
        if missing := plan.missing():
            raise VerificationError(f"'{missing[0]}' is missing from the snapshot "
                                    f"({len(missing)} file(s) missing)")
        if loading is None:
            raise VerificationError("the snapshot holds no dump header; nothing was loaded")
        graceful = True
    except pymysql.err.MySQLError as exc:  # the control session's commits and settings
        raise server_error(exc, "the dump (the control session)") from None
    finally:
        if loading is not None:
            loading.close(graceful)
    loading.check()
    if options.on_bytes is not None:
        options.on_bytes(done)
    return LoadResult(loading.tables, loading.rows, done, time.monotonic() - started, objects,
                      {k: round(v, 2) for k, v in loading.phases.items()})


def _table_chunk(loading: _Loading, control: pymysql.Connection[Any], table: _Table,
                 chunk: ChunkEntry, data: bytes, version: int) -> None:
    """Run a DDL chunk now (on the control session), queue a rows chunk, keep the triggers."""
    name = table.entry.name
    if chunk.part == "rows":
        with loading.lock:
            table.pending += 1
        loading.submit((table, data))
        return
    for statement in chunk_statements(data, version):
        kind = statements.classify_table_statement(statement, name)
        if chunk.part == "post":
            if kind.verb in ("set", "trigger"):
                table.triggers.append(statement)
            continue
        if kind.skip:
            continue
        if kind.verb == "insert":
            raise UnsafeStatementError(f"table '{name}': a row outside the rows of its dump")
        code = statement.code
        if kind.verb == "set":
            table.preamble.append(code)
        elif kind.verb == "create-table" and (table.entry.bytes
                                              >= loading.options.defer_indexes_from):
            deferred = defer_indexes(code, statements.quote_name(name).encode())
            code, table.alter = deferred.create, deferred.alter
        elif kind.verb == "trigger":
            raise UnsafeStatementError(f"table '{name}': a trigger before the table's rows")
        run(control, code, f"table '{name}'")
    control.commit()


def _routines(data: bytes, version: int) -> Script:
    checked = []
    for statement in chunk_statements(data, version):
        statements.classify_routines_statement(statement)
        checked.append(statement)
    return Script(checked)
