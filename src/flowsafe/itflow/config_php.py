"""Reading (never running) ITFlow's ``config.php`` and rewriting its database settings.

flowsafe owns a small PHP lexer here: it understands ``<?php``/``?>``, the three
comment styles, single- and double-quoted strings with PHP's escape rules, and
splits the file into statements at ``;``, ``{``, ``}`` and ``?>``. A statement of
the form ``$name = <literal>;`` at the top level is a *plain assignment*; its
value is kept (``TRUE``/``FALSE``/``NULL`` in any case, decimal integers, quoted
strings). Every other statement (``define(...)``, the ``$mysqli = mysqli_connect(...)``
line older setups wrote, an admin's ``ini_set(...)``) is ignored, except that a
variable flowsafe reads (``READ_VARIABLES``) must be set by a plain assignment:
anything else (an expression, a double-quoted string that interpolates a
``$variable``, an assignment inside a block) is a parse error, because flowsafe
cannot know its value without running PHP. A ``$`` in a double-quoted string
that does not start a variable name (``"pa$"``, ``"$1"``) is literal, as in PHP.

The same lexer reads ``define("NAME", "value")`` constants for ``versions.py``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Final

from flowsafe.errors import ConfigError
from flowsafe.secret import Secret

PhpValue = str | int | bool | None

REQUIRED_VARIABLES: Final = ("dbhost", "dbusername", "dbpassword", "database")
READ_VARIABLES: Final = frozenset(
    {
        *REQUIRED_VARIABLES,
        "config_app_name",
        "config_base_url",
        "installation_id",
        "config_backup_key",
        "config_backup_path",
    }
)

_NAME = re.compile(r"[A-Za-z_\x80-\U0010ffff][A-Za-z0-9_\x80-\U0010ffff]*")
_WORD = re.compile(r"[A-Za-z0-9_\x80-\U0010ffff]+")
_INTEGER = re.compile(r"[1-9][0-9]*|0")
_OPEN_TAG = re.compile(r"<\?(?:php(?=\s|$)|=)", re.IGNORECASE)
_OCTAL = re.compile(r"[0-7]{1,3}")
_HEX = re.compile(r"x([0-9A-Fa-f]{1,2})")
_UNICODE = re.compile(r"u\{([0-9A-Fa-f]+)\}")
_SIMPLE_ESCAPES: Final = {
    "n": b"\n",
    "t": b"\t",
    "r": b"\r",
    "v": b"\v",
    "e": b"\x1b",
    "f": b"\f",
    "\\": b"\\",
    "$": b"$",
    '"': b'"',
}
_LITERAL_WORDS: Final[Mapping[str, PhpValue]] = {"true": True, "false": False, "null": None}
_TERMINATORS: Final = frozenset({";", "{", "}", "?>"})
_COMPOUND_OPERATORS: Final = frozenset(".+-*/%?&|^")


@dataclass(frozen=True)
class Token:
    """One PHP token: ``var`` ($name), ``string``, ``word`` or ``op``; offsets into the text.

    ``value`` is the decoded string for a literal ``string`` token, ``None`` for a
    double-quoted string that interpolates variables, and the source text otherwise.
    """

    kind: str
    value: str | None
    line: int
    start: int
    end: int


def _parse_error(label: str, line: int, what: str) -> ConfigError:
    return ConfigError(f"{label} line {line}: {what}; fix the line")


class _Lexer:
    """Turns PHP source into tokens, skipping inline HTML, whitespace and comments."""

    def __init__(self, text: str, label: str) -> None:
        self.text = text
        self.label = label

    def line_at(self, offset: int) -> int:
        return self.text.count("\n", 0, offset) + 1

    def error(self, offset: int, what: str) -> ConfigError:
        return _parse_error(self.label, self.line_at(offset), what)

    def tokens(self) -> Iterator[Token]:
        text = self.text
        opening = _OPEN_TAG.search(text)
        if opening is None:
            raise self.error(0, "no '<?php' opening tag, so PHP would set nothing")
        pos = opening.end()
        while pos < len(text):
            char = text[pos]
            if char.isspace():
                pos += 1
            elif text.startswith("?>", pos):
                yield self._token("op", "?>", pos, pos + 2)
                reopening = _OPEN_TAG.search(text, pos + 2)
                pos = reopening.end() if reopening else len(text)
            elif char == "#" or text.startswith("//", pos):
                pos = self._skip_line_comment(pos)
            elif text.startswith("/*", pos):
                end = text.find("*/", pos + 2)
                if end < 0:
                    raise self.error(pos, "'/*' comment is never closed with '*/'")
                pos = end + 2
            elif text.startswith("<<<", pos):
                raise self.error(pos, "heredoc/nowdoc strings (<<<) are not supported")
            elif char in "'\"":
                token = self._string(pos)
                yield token
                pos = token.end
            elif char == "$" and (name := _NAME.match(text, pos + 1)):
                yield self._token("var", name.group(), pos, name.end())
                pos = name.end()
            elif word := _WORD.match(text, pos):
                yield self._token("word", word.group(), pos, word.end())
                pos = word.end()
            else:
                yield self._token("op", char, pos, pos + 1)
                pos += 1

    def _token(self, kind: str, value: str | None, start: int, end: int) -> Token:
        return Token(kind, value, self.line_at(start), start, end)

    def _skip_line_comment(self, pos: int) -> int:
        ends = [i for i in (self.text.find(s, pos) for s in ("\n", "\r", "?>")) if i >= 0]
        return min(ends, default=len(self.text))

    def _closing_quote(self, start: int) -> int:
        quote = self.text[start]
        pos = start + 1
        while pos < len(self.text):
            if self.text[pos] == "\\":
                pos += 2
            elif self.text[pos] == quote:
                return pos
            else:
                pos += 1
        raise self.error(start, f"string opened with {quote} is never closed")

    def _string(self, start: int) -> Token:
        close = self._closing_quote(start)
        body = self.text[start + 1 : close]
        if self.text[start] == "'":
            value: str | None = _single_quoted(body)
        else:
            value = self._double_quoted(body, start)
        return self._token("string", value, start, close + 1)

    def _double_quoted(self, body: str, start: int) -> str | None:
        """PHP's double-quoted escapes; ``None`` when the string interpolates a variable."""
        out = bytearray()
        pos = 0
        while pos < len(body):
            char = body[pos]
            if (char == "$" and _NAME.match(body, pos + 1)) or body.startswith(("{$", "${"), pos):
                return None
            if char != "\\":
                out += char.encode()
                pos += 1
                continue
            pos += 1
            if (simple := _SIMPLE_ESCAPES.get(body[pos])) is not None:
                out += simple
                pos += 1
            elif octal := _OCTAL.match(body, pos):
                out.append(int(octal.group(), 8) & 0xFF)
                pos = octal.end()
            elif hexa := _HEX.match(body, pos):
                out.append(int(hexa.group(1), 16))
                pos = hexa.end()
            elif uni := _UNICODE.match(body, pos):
                if int(uni.group(1), 16) > 0x10FFFF:
                    raise self.error(start, "\\u{...} escape is beyond U+10FFFF")
                out += chr(int(uni.group(1), 16)).encode("utf-8", "surrogatepass")
                pos = uni.end()
            else:
                out += b"\\"
        try:
            return out.decode("utf-8")
        except UnicodeDecodeError:
            raise self.error(start, "double-quoted string is not UTF-8 after its escapes") from None


def _single_quoted(body: str) -> str:
    """PHP's single-quoted rules: only ``\\'`` and ``\\\\`` are escapes."""
    return re.sub(r"\\([\\'])", r"\1", body)


def single_quote(value: str) -> str:
    """``value`` as a PHP single-quoted literal that reads back as exactly ``value``."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _statements(text: str, label: str) -> Iterator[tuple[int, list[Token]]]:
    """Statements as (brace depth, tokens); a statement ends at ``;``, ``{``, ``}`` or ``?>``."""
    lexer = _Lexer(text, label)
    depth = 0
    current: list[Token] = []
    for token in lexer.tokens():
        if token.kind == "op" and token.value in _TERMINATORS:
            if current:
                yield depth, current
            current = []
            depth += {"{": 1, "}": -1}.get(token.value or "", 0)
        else:
            _check_adjacent(current, token, label)
            current.append(token)
    if current:
        raise _parse_error(label, current[-1].line, "statement does not end with ';'")


def _check_adjacent(before: list[Token], token: Token, label: str) -> None:
    """Two values in a row (``'a' $b``) mean a missing ``;``: PHP would refuse the file."""
    if not before or token.kind not in ("var", "string"):
        return
    previous = before[-1]
    if previous.kind in ("var", "string") or _literal_word(previous) is not _NOT_LITERAL:
        raise _parse_error(label, previous.line, "missing ';' after this value")


class _NotLiteral:
    """Marker: the token (sequence) is not a literal PHP value."""


_NOT_LITERAL: Final = _NotLiteral()


def _literal_word(token: Token) -> PhpValue | _NotLiteral:
    if token.kind != "word" or token.value is None:
        return _NOT_LITERAL
    if _INTEGER.fullmatch(token.value):
        return int(token.value)
    return _LITERAL_WORDS.get(token.value.lower(), _NOT_LITERAL)


def _literal(tokens: list[Token]) -> PhpValue | _NotLiteral:
    """The value of ``'text'``, ``"text"``, ``TRUE``, ``NULL``, ``42`` or ``-42``."""
    if len(tokens) == 2 and tokens[0].kind == "op" and tokens[0].value in ("+", "-"):
        number = _literal_word(tokens[1])
        if isinstance(number, int) and not isinstance(number, bool):
            return -number if tokens[0].value == "-" else number
        return _NOT_LITERAL
    if len(tokens) != 1:
        return _NOT_LITERAL
    if tokens[0].kind == "string":
        return _NOT_LITERAL if tokens[0].value is None else tokens[0].value
    return _literal_word(tokens[0])


@dataclass(frozen=True)
class Assignment:
    """A plain top-level ``$name = value;``; ``start``/``end`` delimit the value's source."""

    name: str
    value: PhpValue
    start: int
    end: int


def _is_assignment_to(tokens: list[Token], index: int) -> bool:
    """``$name =``, ``$name .=``, ``$name ??=`` … but not ``==``, ``=>``, ``<=``, ``!=``."""
    if tokens[index].kind != "var":
        return False
    after = index + 1
    while (after < len(tokens) and tokens[after].kind == "op"
           and tokens[after].value in _COMPOUND_OPERATORS):
        after += 1
    # operators only: a string whose text is '=' or '>' is a value, not half of '==' or '=>'
    following = [token.value if token.kind == "op" else None
                 for token in tokens[after : after + 2]]
    return following[:1] == ["="] and following[1:] not in (["="], [">"])


def plain_assignments(text: str, label: str = "config.php") -> list[Assignment]:
    """Every plain assignment in file order; a ``ConfigError`` naming the line on bad syntax."""
    found: list[Assignment] = []
    for depth, tokens in _statements(text, label):
        targets = [i for i in range(len(tokens)) if _is_assignment_to(tokens, i)]
        if targets and targets[0] == 0 and len(tokens) == 2:
            raise _parse_error(label, tokens[1].line, f"nothing after '${tokens[0].value} ='")
        plain = targets == [0] and tokens[1].value == "=" and depth == 0
        value = _literal(tokens[2:]) if plain else _NOT_LITERAL
        if not isinstance(value, _NotLiteral):
            name = tokens[0].value or ""
            found.append(Assignment(name, value, tokens[2].start, tokens[-1].end))
            continue
        for index in targets:
            if tokens[index].value in READ_VARIABLES:
                raise _parse_error(
                    label,
                    tokens[index].line,
                    f"${tokens[index].value} must be a plain top-level assignment of a quoted "
                    "string, number, TRUE/FALSE or NULL (flowsafe does not run PHP)",
                )
    return found


def php_constants(text: str, label: str) -> dict[str, PhpValue]:
    """Constants from ``define("NAME", value)`` (any case); ``None`` when not a literal."""
    constants: dict[str, PhpValue] = {}
    for _depth, tokens in _statements(text, label):
        words = [token.value for token in tokens[:3]]
        if len(tokens) < 6 or (words[0] or "").lower() != "define" or words[1] != "(":
            continue
        if tokens[2].kind != "string" or tokens[2].value is None or tokens[3].value != ",":
            continue
        value = _literal(tokens[4:-1]) if tokens[-1].value == ")" else _NOT_LITERAL
        constants[tokens[2].value] = None if isinstance(value, _NotLiteral) else value
    return constants


def read_php(path: Path, what: str) -> str:
    """A PHP file's text exactly as stored (CRLF kept, UTF-8 BOM kept)."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise
    except OSError as exc:
        raise ConfigError(
            f"cannot read {what} {path}: {exc.strerror}; "
            "run flowsafe as a user that can read the ITFlow folder (root or the web server user)"
        ) from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(
            f"{what} {path} is not UTF-8 text (bad byte at offset {exc.start}); save it as UTF-8"
        ) from None


@dataclass(frozen=True)
class ConfigPhp:
    """The values of ``config.php``; ``repr`` never shows them (they hold passwords)."""

    path: Path
    values: Mapping[str, PhpValue] = field(repr=False)

    def _text(self, name: str) -> str | None:
        value = self.values.get(name)
        if value is None or isinstance(value, bool):
            return None
        return str(value)

    def _required(self, name: str) -> str:
        value = self._text(name)
        if value is None:
            raise ConfigError(
                f"{self.path} does not set ${name} to a string (is this an ITFlow folder?); "
                f"add the line or point --site at the ITFlow folder"
            )
        return value

    @property
    def dbhost(self) -> str:
        return self._required("dbhost")

    @property
    def dbusername(self) -> str:
        return self._required("dbusername")

    @property
    def dbpassword(self) -> Secret:
        return Secret(self._required("dbpassword"))

    @property
    def database(self) -> str:
        return self._required("database")

    @property
    def base_url(self) -> str | None:
        return self._text("config_base_url")

    @property
    def app_name(self) -> str | None:
        return self._text("config_app_name")

    @property
    def installation_id(self) -> str | None:
        return self._text("installation_id")

    @property
    def backup_key(self) -> Secret | None:
        value = self._text("config_backup_key")
        return None if value is None else Secret(value)

    @property
    def backup_path(self) -> str | None:
        return self._text("config_backup_path")


def parse_config_php(path: Path) -> ConfigPhp:
    """Read ``path`` (an ITFlow ``config.php``); the four database settings must be set."""
    try:
        text = read_php(path, "ITFlow config")
    except FileNotFoundError:
        raise ConfigError(
            f"no ITFlow install at {path.parent}: config.php not found; "
            "point --site at the ITFlow folder"
        ) from None
    values = {a.name: a.value for a in plain_assignments(text, str(path))}
    config = ConfigPhp(path, MappingProxyType(values))
    for name in REQUIRED_VARIABLES:
        config._required(name)
    return config


def base_url_value(value: str) -> str:
    """``https://itflow.example.com/`` -> ``itflow.example.com``: ``$config_base_url`` holds
    the host (and any path), never a scheme."""
    host = re.sub(r"^[a-zA-Z][a-zA-Z0-9+.-]*://", "", value.strip()).rstrip("/")
    if not host or re.search(r"[\s'\"\\]", host):
        raise ConfigError(f"--base-url {value!r} is not a host name (like itflow.example.com)")
    return host


def rewrite_settings(text: str, values: Mapping[str, str]) -> str:
    """``text`` with the values of the named plain assignments replaced, every other byte kept.

    Pass the text exactly as stored (``read_php`` or ``newline=""``) so CRLF survives.
    Every plain assignment of each variable is replaced; a missing one is an error.
    """
    assignments = [a for a in plain_assignments(text) if a.name in values]
    missing = sorted(set(values) - {a.name for a in assignments})
    if missing:
        names = ", ".join(f"${name}" for name in missing)
        raise ConfigError(f"config.php does not set {names}; add the line(s) before rewriting")
    pieces: list[str] = []
    done = 0
    for assignment in assignments:
        pieces += [text[done : assignment.start], single_quote(values[assignment.name])]
        done = assignment.end
    pieces.append(text[done:])
    return "".join(pieces)


def rewrite_db_settings(text: str, *, host: str, user: str, password: str, database: str) -> str:
    """``text`` with the four database assignments' values replaced (``rewrite_settings``)."""
    return rewrite_settings(text, {"dbhost": host, "dbusername": user, "dbpassword": password,
                                   "database": database})
