"""Does an ITFlow tree answer its login page? (the drill's and the update's check)

PHP's built-in server serves a copy of the tree (without ``uploads/`` and ``.git``)
as an unprivileged account (``www-data``, else ``nobody``), never as root: the code
may come from a snapshot anyone with the repository password could have written.
The copy is root-owned and only readable to that account; the one thing it may write
is its own session folder. When the account cannot reach the database socket (a
private server's socket sits in a root-only folder), the socket is hard-linked into
the copy's folder, which only that account's group can enter.

The request says ``X-Forwarded-Proto: https``, as a TLS proxy would, and the check
passes only on a page holding the login form (email and password fields): ITFlow's
HTTPS-only notice, a database error or a setup redirect fail it.
"""

from __future__ import annotations

import logging
import os
import shutil
import stat
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path

from flowsafe import execute, scratch
from flowsafe.errors import FlowsafeError
from flowsafe.local_users import Account, unprivileged
from flowsafe.mariadb.instance import free_port

log = logging.getLogger(__name__)

LOGIN_TIMEOUT = 20.0
PREFIX = "flowsafe-php-"
SKIPPED = ("uploads", ".git")  # top-level folders the login page does not need
SOCKET_NAME = "mysqld.sock"


class LoginPageError(FlowsafeError):
    """The app did not answer its login page with the login form."""


class _LoginForm(HTMLParser):
    """Finds a ``<form>`` holding an email field and a password field."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.in_form = False
        self.fields: set[str] = set()
        self.found = False
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {name: value or "" for name, value in attrs}
        if tag == "form":
            self.in_form, self.fields = True, set()
        elif tag == "input" and self.in_form:
            if values.get("name") == "email":
                self.fields.add("email")
            if values.get("name") == "password" and values.get("type") == "password":
                self.fields.add("password")
            self.found = self.found or self.fields == {"email", "password"}

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self.in_form = False

    def handle_data(self, data: str) -> None:
        self.text.append(data)

    def snippet(self, limit: int = 100) -> str:
        words = " ".join(" ".join(self.text).split())
        return words[:limit] + ("..." if len(words) > limit else "")


@dataclass(frozen=True)
class _Served:
    docroot: Path
    sessions: Path
    socket: str | None
    log: Path


def check(tree: Path, *, socket: str | None, port: int = 0,
          timeout: float = LOGIN_TIMEOUT, account: Account | None = None) -> str:
    """Serve ``tree`` with PHP as ``account`` (default: an unprivileged one, never root)
    and fetch ``/login.php``.

    ``socket`` is the MariaDB socket the app's ``localhost`` means (None: PHP's default).
    Returns a detail line; raises ``LoginPageError`` when the page is not the login form.
    """
    account = account if account is not None and account.uid != 0 else unprivileged()
    if account is None:
        raise FlowsafeError("no www-data or nobody account to run PHP as: create one "
                            "(adduser --system www-data)")
    with _served_copy(tree, account, socket) as served:
        chosen = free_port(port, "PHP's built-in server")
        argv = ["php", "-d", "display_errors=0", "-d", "log_errors=1",
                "-d", f"session.save_path={served.sessions}"]
        if served.socket:
            argv += ["-d", f"mysqli.default_socket={served.socket}",
                     "-d", f"pdo_mysql.default_socket={served.socket}"]
        argv += ["-S", f"127.0.0.1:{chosen}", "-t", str(served.docroot)]
        with served.log.open("wb") as errors:
            server = execute.spawn(argv, stdout=subprocess.DEVNULL, stderr=errors.fileno(),
                                   cwd=str(served.docroot), account=account)
        try:
            return _fetch(f"http://127.0.0.1:{chosen}/login.php", timeout, account.name)
        finally:
            execute.stop(server, timeout=5)
            log.debug("php -S said: %s", execute.tail(served.log.read_bytes(), 10))


def _fetch(url: str, timeout: float, user: str) -> str:
    request = urllib.request.Request(url, headers={"X-Forwarded-Proto": "https"})
    deadline = time.monotonic() + timeout
    last = "no answer"
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(request, timeout=5) as answer:
                body = answer.read()
                status = answer.status
        except urllib.error.HTTPError as exc:
            raise LoginPageError(f"GET /login.php answered {exc.code}") from None
        except (urllib.error.URLError, ConnectionError) as exc:
            last = str(exc)
            time.sleep(0.2)
            continue
        page = _LoginForm()
        page.feed(body.decode("utf-8", "replace"))
        if status == 200 and page.found:
            return (f"GET /login.php answered 200 with the login form ({len(body)} bytes, "
                    f"PHP as {user})")
        raise LoginPageError(f"GET /login.php answered {status} without the login form "
                             f"(no email and password fields): {page.snippet()!r}")
    raise LoginPageError(f"the app did not answer within {timeout:.0f} s: {last}")


@contextmanager
def _served_copy(tree: Path, account: Account, socket: str | None) -> Iterator[_Served]:
    """A private folder the account's group may enter: the copy, a session folder it
    owns, and (when needed) a link to the database socket."""
    unreachable = socket if socket is not None and not account.can_reach(socket) else None
    # a hard link needs the socket's filesystem: start from its folder, not /tmp
    start = Path(unreachable).parent if unreachable else Path(tempfile.gettempdir())
    base = next((f for f in (start, *start.parents) if account.can_enter(f)), Path("/"))
    scratch.clean_stale(base, PREFIX)
    folder = scratch.make(base, PREFIX)
    try:
        os.chown(folder, 0, account.gid)
        folder.chmod(0o750)
        _copy_readable(tree, folder / "site", account.gid)
        sessions = folder / "sessions"
        sessions.mkdir(mode=0o700)
        os.chown(sessions, account.uid, account.gid)
        served = _link_socket(unreachable, folder, account) if unreachable else socket
        yield _Served(folder / "site", sessions, served, folder / "php.log")
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _link_socket(socket: str, folder: Path, account: Account) -> str:
    link = folder / SOCKET_NAME
    if not os.path.exists(socket):
        raise FlowsafeError(f"no database socket at {socket}: is the database server running?")
    try:
        os.link(socket, link)
    except OSError as exc:
        raise FlowsafeError(
            f"PHP runs as {account.name}, which cannot reach the database socket {socket}, "
            f"and linking it into {folder} failed ({exc.strerror}): let {account.name} "
            "reach the socket's folder"
        ) from None
    return str(link)


def _copy_readable(source: Path, dest: Path, gid: int) -> None:
    """Copy folders, regular files and symlinks (never followed) below ``source``;
    root-owned, readable (not writable) by group ``gid``; other file kinds are left out."""
    pending = [(source, dest)]
    while pending:
        here, there = pending.pop()
        there.mkdir(mode=0o750)
        os.chown(there, 0, gid)
        with os.scandir(here) as entries:
            for entry in entries:
                target = there / entry.name
                if here == source and entry.name in SKIPPED:
                    continue
                if entry.is_symlink():
                    os.symlink(os.readlink(entry.path), target)
                    os.lchown(target, 0, gid)
                elif entry.is_dir(follow_symlinks=False):
                    pending.append((Path(entry.path), target))
                elif entry.is_file(follow_symlinks=False):
                    _copy_file(entry.path, target, gid)


def _copy_file(source: str, target: Path, gid: int) -> None:
    try:
        fd = os.open(source, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:
        return  # replaced or removed since the listing: not a regular file any more
    with os.fdopen(fd, "rb") as reader:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return
        with target.open("xb") as writer:
            os.fchown(writer.fileno(), 0, gid)
            os.fchmod(writer.fileno(), 0o640)
            shutil.copyfileobj(reader, writer, 1 << 20)
