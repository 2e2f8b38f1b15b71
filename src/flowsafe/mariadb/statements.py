"""SQL text cut into statements as the ``mariadb`` client cuts it, and what a statement may be.

``Splitter`` reads SQL line by line and follows what decides where a statement
ends: quoted strings (``'...'``, ``"..."`` with backslash escapes and doubled
quotes), quoted names (`` `...` ``), comments (``-- ``, ``#``, ``/* */``),
executable comments (``/*!NNNNN ... */``, ``/*M!NNNNNN ... */``, run by servers at
least that version) and the client's ``DELIMITER`` command. Each finished
``Statement`` carries its text as written (``raw``) and what the server would run
(``code``: plain comments dropped, executable comments unwrapped or dropped by
version). Loaders send ``code``, never ``raw``, so what runs is what was checked.

A marker comment of mariadb-dump (``-- Table structure for table ...``) only means
something *between* statements (``Splitter.between``): inside a procedure body it
is text. ``Kinds`` names what a statement is and refuses what no dump file of its
kind may hold (``USE``, ``GRANT``, ``CREATE USER``, ``DROP DATABASE``, ``SET
PASSWORD``, ``INSTALL PLUGIN``, ``LOAD DATA``, ``SELECT ... INTO OUTFILE``, client
commands, names of other databases, engines that reach outside the server).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from flowsafe.errors import VerificationError

# A server's version as mariadb-dump's executable comments write it (10.11.4 -> 101104).
DEFAULT_SERVER_VERSION = 101100
_CODE, _SINGLE, _DOUBLE, _BACK, _COMMENT = range(5)
_QUOTE_STATE = {0x27: _SINGLE, 0x22: _DOUBLE, 0x60: _BACK}
_CLOSERS = {_SINGLE: re.compile(rb"['\\]"), _DOUBLE: re.compile(rb'["\\]'),
            _BACK: re.compile(rb"`")}
_END_COMMENT = re.compile(rb"\*/")
_EXECUTABLE = re.compile(rb"/\*(M?)!(\d{5,6})?")
_DELIMITER_LINE = re.compile(rb"[ \t]*delimiter[ \t]+(\S+)", re.IGNORECASE)
_SPACE = b" \t\r\n\f\v"


class UnsafeStatementError(VerificationError):
    """A statement that no dump file of this kind holds: nothing of it reached a server."""


@dataclass(frozen=True)
class Statement:
    """One statement: as written, and what a server runs; ``line`` is where it starts."""

    raw: bytes
    code: bytes
    line: int

    def head(self, words: int = 6) -> str:
        """The first words of ``code``, for messages: cut before the first quoted value or
        value list, since values can be secrets (ITFlow keeps SMTP passwords in rows)."""
        cut = re.search(rb"['\"(]", self.code)
        text = self.code[:cut.start()] if cut else self.code
        return " ".join(text.decode("utf-8", "replace").split()[:words])


class Splitter:
    """Feeds on lines (each with its newline, the last one may lack it); returns the
    statements each line completes."""

    def __init__(self, server_version: int = DEFAULT_SERVER_VERSION) -> None:
        self.server_version = server_version
        self.delimiter = b";"
        self._pattern = self._code_pattern(self.delimiter)
        self.state = _CODE
        self.executable = False  # inside /*! ... */: its text is code
        self.raw = bytearray()
        self.code = bytearray()
        self.line = 0
        self.start = 0

    @staticmethod
    def _code_pattern(delimiter: bytes) -> re.Pattern[bytes]:
        return re.compile(rb"['\"`#]|--|/\*|\*/|" + re.escape(delimiter))

    @property
    def between(self) -> bool:
        """No statement has begun: only whitespace or comments since the last one ended."""
        return self.state == _CODE and not self.executable and not self.code.strip(_SPACE)

    def feed(self, line: bytes) -> list[Statement]:
        self.line += 1
        if self.between and (match := _DELIMITER_LINE.match(line)):
            self.delimiter = match.group(1)
            self._pattern = self._code_pattern(self.delimiter)
            self.raw.clear()
            self.code.clear()
            return []
        if not self.code.strip(_SPACE) and self.state == _CODE and not self.executable:
            self.start = self.line
        done: list[Statement] = []
        pos, end = 0, len(line)
        while pos < end:
            if self.state == _CODE:
                pos = self._code(line, pos, done)
            elif self.state == _COMMENT:
                found = _END_COMMENT.search(line, pos)
                stop = end if found is None else found.end()
                self.raw += line[pos:stop]
                if found is not None:
                    self.state = _CODE
                pos = stop
            else:
                pos = self._quoted(line, pos)
        return done

    def _code(self, line: bytes, pos: int, done: list[Statement]) -> int:
        found = self._pattern.search(line, pos)
        if found is None:
            self._take(line[pos:])
            return len(line)
        start, token = found.start(), found.group()
        self._take(line[pos:start])
        if token in (b"'", b'"', b"`"):
            self._take(token)
            self.state = _QUOTE_STATE[token[0]]
            return start + 1
        if token == b"#" or (token == b"--" and (start + 2 == len(line)
                                                 or line[start + 2] in b" \t\r\n\f\v")):
            newline = line.endswith(b"\n")
            self.raw += line[start:-1] if newline else line[start:]
            if newline:
                self._take(b"\n")
            return len(line)
        if token == b"--":
            self._take(b"-")
            return start + 1
        if token == b"/*":
            return self._open_comment(line, start)
        if token == b"*/":
            if self.executable:
                self.executable = False
                self.raw += token
                self.code += b" "
            else:
                self._take(token)
            return start + 2
        # the delimiter: the statement ends here
        self.raw += token
        if self.code.strip(_SPACE):
            done.append(Statement(bytes(self.raw[:-len(token)]).strip(_SPACE),
                                  bytes(self.code).strip(_SPACE), self.start))
        self.raw.clear()
        self.code.clear()
        self.start = self.line
        return start + len(token)

    def _open_comment(self, line: bytes, start: int) -> int:
        executable = _EXECUTABLE.match(line, start)
        if executable is not None and not self.executable:
            version = int(executable.group(2)) if executable.group(2) else 0
            if version <= self.server_version:
                self.executable = True
                self.raw += executable.group()
                self.code += b" "
                return executable.end()
        self.state = _COMMENT
        self.raw += b"/*"
        return start + 2

    def _quoted(self, line: bytes, pos: int) -> int:
        closer = _CLOSERS[self.state]
        quote = {_SINGLE: 0x27, _DOUBLE: 0x22, _BACK: 0x60}[self.state]
        while True:
            found = closer.search(line, pos)
            if found is None:
                self._take(line[pos:])
                return len(line)
            at = found.start()
            if line[at] == 0x5C:  # a backslash escapes the next byte
                if at + 1 >= len(line):
                    self._take(line[pos:])
                    return len(line)
                self._take(line[pos:at + 2])
                pos = at + 2
                continue
            if at + 1 < len(line) and line[at + 1] == quote:  # a doubled quote
                self._take(line[pos:at + 2])
                pos = at + 2
                continue
            self._take(line[pos:at + 1])
            self.state = _CODE
            return at + 1

    def _take(self, text: bytes) -> None:
        self.raw += text
        self.code += text

    def finish(self) -> list[Statement]:
        """The statement the text ended in without a delimiter, if any (as the client
        runs it at end of input); raises if the text ended inside a string or comment."""
        if self.state != _CODE or self.executable:
            raise UnsafeStatementError(
                f"the SQL ends inside an unclosed string or comment (from line {self.start})")
        code = bytes(self.code).strip(_SPACE)
        raw = bytes(self.raw).strip(_SPACE)
        self.raw.clear()
        self.code.clear()
        return [Statement(raw, code, self.start)] if code else []


def split(lines: Iterable[bytes], server_version: int = DEFAULT_SERVER_VERSION
          ) -> Iterator[Statement]:
    """Every statement of SQL given as lines (with their newlines)."""
    splitter = Splitter(server_version)
    for line in lines:
        yield from splitter.feed(line)
    yield from splitter.finish()


def split_text(text: bytes, server_version: int = DEFAULT_SERVER_VERSION) -> list[Statement]:
    """Every statement of a (small) SQL text."""
    return list(split(text.splitlines(keepends=True), server_version))


# -- what a statement is --------------------------------------------------------------

_NAME = rb"(?:`(?:[^`]|``)+`|[A-Za-z0-9_$\x80-\xff]+)"
_USER = rb"(?:`(?:[^`]|``)*`|'(?:[^'\\]|\\.|'')*'|\"(?:[^\"\\]|\\.)*\"|[\w$]+)"
_HOST = rb"(?:`(?:[^`]|``)*`|'(?:[^'\\]|\\.|'')*'|\"(?:[^\"\\]|\\.)*\"|[\w.%$:-]+)"
_DEFINER = (rb"DEFINER\s*=\s*(?:CURRENT_USER(?:\s*\(\s*\))?|" + _USER + rb"(?:\s*@\s*" + _HOST
            + rb")?)\s+")
_CREATE_OBJECT = re.compile(
    rb"\s*CREATE\s+(?:OR\s+REPLACE\s+)?(?P<algorithm>ALGORITHM\s*=\s*\w+\s+)?(?:" + _DEFINER
    + rb")?(?P<security>SQL\s+SECURITY\s+\w+\s+)?(?P<kind>VIEW|TRIGGER|PROCEDURE|"
    rb"(?:AGGREGATE\s+)?FUNCTION|EVENT)\s+(?:IF\s+NOT\s+EXISTS\s+)?(?P<name>" + _NAME
    + rb"(?:\s*\.\s*" + _NAME + rb")?)", re.IGNORECASE | re.DOTALL)
_TRIGGER_TABLE = re.compile(rb"\s+(?:BEFORE|AFTER)\s+(?:INSERT|UPDATE|DELETE)\s+ON\s+(?P<table>"
                            + _NAME + rb"(?:\s*\.\s*" + _NAME + rb")?)", re.IGNORECASE)
_DROP = re.compile(rb"\s*DROP\s+(?P<kind>TABLE|VIEW|SEQUENCE|PROCEDURE|FUNCTION|EVENT|TRIGGER)"
                   rb"\s+IF\s+EXISTS\s+(?P<name>" + _NAME + rb"(?:\s*\.\s*" + _NAME
                   + rb")?)\s*$", re.IGNORECASE | re.DOTALL)
_CREATE_TABLE = re.compile(rb"\s*CREATE\s+(?P<kind>TABLE|SEQUENCE)\s+(?P<name>" + _NAME
                           + rb"(?:\s*\.\s*" + _NAME + rb")?)", re.IGNORECASE)
_ALTER_KEYS = re.compile(rb"\s*ALTER\s+TABLE\s+(?P<name>" + _NAME
                         + rb")\s+(?:DISABLE|ENABLE)\s+KEYS\s*$", re.IGNORECASE)
_SETVAL = re.compile(rb"\s*(?:DO|SELECT)\s+SETVAL\s*\(\s*(?P<name>" + _NAME
                     + rb")\s*,[-\d\s,]+\)\s*$", re.IGNORECASE)
_INSERT = re.compile(rb"\s*INSERT\s+INTO\s+(?P<name>" + _NAME + rb"(?:\s*\.\s*" + _NAME
                     + rb")?)\s*(?:\(|VALUES\b)", re.IGNORECASE)
_SET = re.compile(rb"\s*SET\s+(?P<body>.*)$", re.IGNORECASE | re.DOTALL)
# What a SET in a dump assigns: session settings and user variables, nothing global.
_SETTABLE = frozenset({
    "character_set_client", "character_set_results", "collation_connection", "sql_mode",
    "time_zone", "unique_checks", "foreign_key_checks", "sql_notes",
    "system_versioning_insert_history",
})
_ASSIGNMENT = re.compile(
    rb"\s*(?:(?P<user>@`(?:[^`]|``)+`|@[\w$.]+)|(?:@@(?:session\.|local\.)?)?(?P<var>[A-Za-z_]+))"
    rb"\s*:?=\s*(?P<value>'(?:[^'\\]|\\.|'')*'|\"(?:[^\"\\]|\\.)*\"|-?\d+(?:\.\d+)?|"
    rb"@@(?:session\.)?[A-Za-z_]+|@[\w$.]+|@`(?:[^`]|``)+`|NULL|DEFAULT|ON|OFF|TRUE|FALSE|"
    rb"[A-Za-z0-9_]+)\s*$", re.IGNORECASE | re.DOTALL)
_NAMES = re.compile(rb"\s*NAMES\s+[\w']+(?:\s+COLLATE\s+[\w']+)?\s*$", re.IGNORECASE)
_ENGINES = frozenset({b"innodb", b"myisam", b"aria", b"memory", b"archive", b"csv",
                      b"sequence", b"heap"})
_ENGINE = re.compile(rb"\bENGINE\s*=\s*(\w+)", re.IGNORECASE)
_FORBIDDEN_TABLE_OPTIONS = re.compile(rb"\b(?:DATA|INDEX)\s+DIRECTORY\b|\bCONNECTION\s*=",
                                      re.IGNORECASE)


def unquote(name: bytes) -> str:
    """A name as the server sees it: backquotes removed, doubled backquotes undone."""
    name = name.strip()
    if name.startswith(b"`") and name.endswith(b"`") and len(name) >= 2:
        name = name[1:-1].replace(b"``", b"`")
    return name.decode("utf-8", "replace")


def quote_name(name: str) -> str:
    """A MariaDB identifier in backquotes."""
    return "`" + name.replace("`", "``") + "`"


def _own(statement: Statement, name: bytes, expected: str | None, what: str) -> str:
    """The unqualified name a statement names; refuses another database's or object's."""
    if re.search(rb"^(?:`(?:[^`]|``)+`|[^`\s.]+)\s*\.", name):
        raise UnsafeStatementError(
            f"line {statement.line}: '{statement.head()}' names an object of another database")
    found = unquote(name)
    if expected is not None and found != expected:
        raise UnsafeStatementError(
            f"line {statement.line}: '{statement.head()}' names {what} '{found}', not "
            f"'{expected}'")
    return found


def split_top(body: bytes) -> list[bytes]:
    """Split at commas outside quotes and parentheses (for SET lists, CREATE TABLE bodies)."""
    parts, depth, start, pos = [], 0, 0, 0
    while pos < len(body):
        char = body[pos]
        if char in (0x27, 0x22, 0x60):
            pos = _skip_quoted(body, pos)
            continue
        if char == 0x28:
            depth += 1
        elif char == 0x29:
            depth -= 1
        elif char == 0x2C and depth == 0:
            parts.append(body[start:pos])
            start = pos + 1
        pos += 1
    parts.append(body[start:])
    return parts


def _skip_quoted(text: bytes, pos: int) -> int:
    """The index after the quoted string or name that starts at ``pos``."""
    quote = text[pos]
    pos += 1
    while pos < len(text):
        if text[pos] == 0x5C and quote != 0x60:
            pos += 2
        elif text[pos] == quote:
            if pos + 1 < len(text) and text[pos + 1] == quote:
                pos += 2
            else:
                return pos + 1
        else:
            pos += 1
    return pos


def check_set(statement: Statement) -> None:
    """A SET of session settings or user variables, as dumps write them; nothing else."""
    match = _SET.match(statement.code)
    if match is None:
        raise UnsafeStatementError(f"line {statement.line}: '{statement.head()}' is not a SET")
    if _NAMES.match(match.group("body")):
        return
    for part in split_top(match.group("body")):
        assignment = _ASSIGNMENT.match(part)
        variable = assignment.group("var") if assignment else None
        if assignment is None or (variable is not None
                                  and variable.decode().lower() not in _SETTABLE):
            raise UnsafeStatementError(
                f"line {statement.line}: '{statement.head()}' sets something a dump never "
                "sets (only session settings and user variables are allowed)")


@dataclass(frozen=True)
class Kind:
    """What a checked statement is: ``verb`` (set, create-table, insert, trigger, view, ...),
    the object it names, and whether a loader skips it (DROP ... IF EXISTS, KEYS toggles)."""

    verb: str
    name: str = ""
    skip: bool = False


def _create_object(statement: Statement) -> Kind | None:
    match = _CREATE_OBJECT.match(statement.code)
    if match is None:
        return None
    kind = match.group("kind").decode().lower().split()[-1]
    return Kind(kind, _own(statement, match.group("name"), None, kind))


def named_table(statement: Statement) -> str | None:
    """The table a CREATE TABLE, INSERT or DROP TABLE names (unquoted), else None: a script
    without file boundaries (ITFlow's db.sql) is checked statement by statement with it."""
    for pattern in (_CREATE_TABLE, _INSERT, _DROP):
        match = pattern.match(statement.code)
        if match is not None and (pattern is not _DROP
                                  or match.group("kind").upper() == b"TABLE"):
            return unquote(match.group("name"))
    return None


def classify_table_statement(statement: Statement, table: str) -> Kind:
    """What a statement of table ``table``'s file is; raises for anything else."""
    code = statement.code
    first = code.lstrip()[:6].upper()
    if first.startswith(b"INSERT"):
        match = _INSERT.match(code)
        if match is not None:
            return Kind("insert", _own(statement, match.group("name"), table, "table"))
    elif first.startswith(b"SET"):
        check_set(statement)
        return Kind("set")
    elif first.startswith(b"CREATE"):
        if (match := _CREATE_TABLE.match(code)) is not None:
            name = _own(statement, match.group("name"), table, "table")
            _check_table_definition(statement)
            return Kind("create-" + match.group("kind").decode().lower(), name)
        created = _create_object(statement)
        if created is not None and created.verb == "trigger":
            on = _TRIGGER_TABLE.match(code, _CREATE_OBJECT.match(code).end())  # type: ignore[union-attr]
            if on is None:
                raise UnsafeStatementError(
                    f"line {statement.line}: trigger '{created.name}' has no ON clause flowsafe "
                    "can read")
            _own(statement, on.group("table"), table, "table")
            return created
    elif first.startswith(b"DROP"):
        if (match := _DROP.match(code)) is not None and match.group("kind").upper() in (
                b"TABLE", b"SEQUENCE"):
            return Kind("drop", _own(statement, match.group("name"), table, "table"), skip=True)
    elif first.startswith(b"ALTER"):
        if (match := _ALTER_KEYS.match(code)) is not None:
            return Kind("keys", _own(statement, match.group("name"), table, "table"), skip=True)
    elif first.startswith((b"DO", b"SELECT")) and (match := _SETVAL.match(code)) is not None:
        return Kind("setval", _own(statement, match.group("name"), table, "sequence"))
    raise UnsafeStatementError(
        f"line {statement.line}: '{statement.head()}' is not a statement a table's dump holds")


def _check_table_definition(statement: Statement) -> None:
    """A CREATE TABLE that stays inside the server: no directories, connections, odd engines,
    no rows copied from elsewhere (CREATE ... SELECT / LIKE)."""
    code = statement.code
    if _FORBIDDEN_TABLE_OPTIONS.search(code):
        raise UnsafeStatementError(
            f"line {statement.line}: '{statement.head()}' places data outside the database "
            "(DATA/INDEX DIRECTORY or CONNECTION)")
    for engine in _ENGINE.findall(code):
        if engine.lower() not in _ENGINES:
            raise UnsafeStatementError(
                f"line {statement.line}: '{statement.head()}' uses ENGINE={engine.decode()}: "
                "flowsafe restores InnoDB, Aria, MyISAM, MEMORY, ARCHIVE and CSV tables only")
    tail = code[skip_parens(code, code.find(b"(")):] if b"(" in code else code
    if re.search(rb"\b(?:SELECT|LIKE)\b", _without_quoted(tail), re.IGNORECASE):
        raise UnsafeStatementError(
            f"line {statement.line}: '{statement.head()}' copies rows from elsewhere")


def _without_quoted(text: bytes) -> bytes:
    """``text`` with its quoted strings and names left out."""
    kept, pos = bytearray(), 0
    while (found := re.compile(rb"['\"`]").search(text, pos)) is not None:
        kept += text[pos:found.start()]
        pos = _skip_quoted(text, found.start())
    return bytes(kept + text[pos:])


def skip_parens(text: bytes, start: int) -> int:
    """The index after the parenthesised group that opens at ``start``."""
    depth, pos = 0, start
    while pos < len(text):
        char = text[pos]
        if char in (0x27, 0x22, 0x60):
            pos = _skip_quoted(text, pos)
            continue
        if char == 0x28:
            depth += 1
        elif char == 0x29:
            depth -= 1
            if depth == 0:
                return pos + 1
        pos += 1
    return pos


def classify_routines_statement(statement: Statement, triggers: bool = False) -> Kind:
    """What a statement of the views/routines/events file is (with ``triggers``, of any
    script of objects: a trigger then names its table, unqualified); raises for
    anything else."""
    first = statement.code.lstrip()[:6].upper()
    if first.startswith(b"SET"):
        check_set(statement)
        return Kind("set")
    if first.startswith(b"CREATE") and (created := _create_object(statement)) is not None:
        if created.verb != "trigger":
            return created
        if triggers:
            on = _TRIGGER_TABLE.match(statement.code,
                                      _CREATE_OBJECT.match(statement.code).end())  # type: ignore[union-attr]
            if on is not None:
                _own(statement, on.group("table"), None, "table")
                return created
    if first.startswith(b"DROP") and (match := _DROP.match(statement.code)) is not None:
        return Kind("drop", _own(statement, match.group("name"), None, "object"), skip=True)
    raise UnsafeStatementError(
        f"line {statement.line}: '{statement.head()}' is not a statement of a dump's views, "
        "routines or events")


def classify_session_statement(statement: Statement) -> Kind:
    """The header and footer of a dump hold SET statements only."""
    check_set(statement)
    return Kind("set")


def with_definer(statement: Statement, definer: str) -> bytes:
    """A CREATE VIEW/TRIGGER/PROCEDURE/FUNCTION/EVENT whose DEFINER is ``definer``
    (``CURRENT_USER`` or ``` `user`@`host` ```): objects a restore creates then run with
    the rights of the site's own account, never with those of whoever restored them."""
    match = _CREATE_OBJECT.match(statement.code)
    if match is None:
        raise UnsafeStatementError(f"line {statement.line}: '{statement.head()}' is not a "
                                   "CREATE of a view, trigger, routine or event")
    algorithm = match.group("algorithm") or b""
    security = match.group("security") or b""
    head = (b"CREATE " + algorithm + b"DEFINER=" + definer.encode() + b" " + security
            + match.group("kind") + b" ")
    return head + statement.code[match.start("name"):]


def definer_of(user: str, host: str = "localhost") -> str:
    """``user@host`` as a DEFINER clause value."""
    return f"{quote_name(user)}@{quote_name(host)}"
