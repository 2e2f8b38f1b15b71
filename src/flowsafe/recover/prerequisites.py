"""What a new server needs before ``recover`` changes anything: restic, a MariaDB server
that answers root over its local socket, and PHP with mysqli. Everything missing is
named at once, with the one ``apt-get install`` line that adds it."""

from __future__ import annotations

import shutil
from pathlib import Path

from flowsafe import execute
from flowsafe.errors import ConfigError
from flowsafe.mariadb import accounts
from flowsafe.mariadb.connection import DbTarget

SERVER_PROGRAMS = ("mariadbd", "mysqld")


def _php_has_mysqli(php: str) -> bool:
    done = execute.run([php, "-r", "exit(extension_loaded('mysqli') ? 0 : 1);"], check=False)
    return done.code == 0


def missing_packages() -> list[str]:
    """The Debian packages of the tools that are not here (restic, PHP, php-mysql)."""
    missing = [] if shutil.which("restic") else ["restic"]
    php = shutil.which("php")
    if php is None:
        missing += ["php-cli", "php-mysql"]
    elif not _php_has_mysqli(php):
        missing.append("php-mysql")
    return missing


def check(socket: str | None) -> DbTarget:
    """Refuse (exit 2) unless every prerequisite is here; returns root over the socket."""
    missing = missing_packages()
    server = DbTarget(database="", socket=socket)
    root = accounts.root_over_socket(server)
    has_server = any(shutil.which(p) or Path("/usr/sbin", p).exists() for p in SERVER_PROGRAMS)
    if root is None and not has_server:
        missing.insert(0, "mariadb-server")
    if missing:
        raise ConfigError(f"missing on this machine: {', '.join(missing)}; install them with: "
                          f"apt-get install {' '.join(missing)}")
    if root is None:
        where = server.socket_path()
        if not Path(where).exists():
            raise ConfigError(f"MariaDB is not running (no socket at {where}): start it with "
                              "`systemctl start mariadb`, or name its socket with --db-socket")
        raise ConfigError(f"MariaDB at {where} does not let root in over the socket "
                          "(unix_socket authentication): run flowsafe recover as root on the "
                          "database server, or name the right socket with --db-socket")
    return root
