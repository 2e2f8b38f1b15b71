"""Shared fixtures: one factory for real private MariaDB servers (no mocks)."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path

import pytest

from flowsafe.mariadb.connection import DbTarget, connect
from flowsafe.mariadb.instance import PrivateServer, private_server
from tests.probes import mounted
from tests.s3 import s3_server  # noqa: F401

_counter = itertools.count()


_mktemp = pytest.TempPathFactory.mktemp


def _passable_mktemp(self: pytest.TempPathFactory, basename: str, numbered: bool = True) -> Path:
    """Private servers run as the mysql user, and PHP checks as www-data: both must pass
    through every temp folder (pytest makes them 0700) to theirs below. 0711: enter,
    never list."""
    path = _mktemp(self, basename, numbered)
    for folder in (path, self.getbasetemp()):
        folder.chmod(0o711)
    return path


pytest.TempPathFactory.mktemp = _passable_mktemp  # type: ignore[method-assign]


@pytest.fixture(scope="session")
def mariadb_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrivateServer]:
    """One private MariaDB for the whole test session (started and stopped here)."""
    with private_server(tmp_path_factory.mktemp("mariadb")) as server:
        yield server


@pytest.fixture
def database(mariadb_server: PrivateServer) -> Iterator[DbTarget]:
    """A fresh empty database on the session server, dropped afterwards."""
    name = f"t{next(_counter)}"
    root = mariadb_server.target()
    with connect(root) as conn, conn.cursor() as cur:
        cur.execute(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4 COLLATE utf8mb4_general_ci")
    yield root.with_database(name)
    with connect(root) as conn, conn.cursor() as cur:
        cur.execute(f"DROP DATABASE IF EXISTS `{name}`")


@pytest.fixture
def tiny_disk(tmp_path: Path) -> Iterator[Path]:
    """A 256 KiB tmpfs, to fill a disk on purpose."""
    with mounted(tmp_path / "tiny", "-o", "size=256k") as mount:
        yield mount
