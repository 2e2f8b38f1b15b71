"""An ITFlow install as flowsafe sees it: its folder, config.php and versions.

``read_site`` checks that a folder is an ITFlow install and reads everything
that can be known without the database; ``schema_version_in_use`` asks the
database which schema version it holds.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pymysql
from pymysql.constants import ER

from flowsafe.errors import ConfigError
from flowsafe.itflow.config_php import ConfigPhp, parse_config_php
from flowsafe.itflow.versions import app_version, expected_schema_version, git_commit

DEFAULT_EXCLUDES: tuple[str, ...] = ("uploads/tmp", "uploads/backups")

_MISSING_SCHEMA_ERRORS = frozenset({ER.NO_SUCH_TABLE, ER.BAD_FIELD_ERROR})


@dataclass(frozen=True)
class ItflowSite:
    """What the files of an ITFlow install say about it."""

    path: Path
    config: ConfigPhp
    app_version: str | None
    git_commit: str | None
    expected_schema_version: str | None


def read_site(path: Path) -> ItflowSite:
    """Read the ITFlow install in folder ``path``; ``ConfigError`` if it is not one."""
    if not path.exists():
        raise ConfigError(
            f"no ITFlow install at {path}: the folder does not exist; "
            "point --site at the ITFlow folder"
        )
    if not path.is_dir():
        raise ConfigError(
            f"no ITFlow install at {path}: it is a file, not a folder; "
            "point --site at the ITFlow folder"
        )
    return ItflowSite(
        path=path,
        config=parse_config_php(path / "config.php"),
        app_version=app_version(path),
        git_commit=git_commit(path),
        expected_schema_version=expected_schema_version(path),
    )


def schema_version_in_use(conn: pymysql.Connection[Any]) -> str | None:
    """``settings.config_current_database_version``; ``None`` if the table or column is missing."""
    try:
        with conn.cursor() as cursor:
            cursor.execute("SELECT config_current_database_version FROM settings LIMIT 1")
            row = cursor.fetchone()
    except pymysql.err.MySQLError as exc:
        if exc.args and exc.args[0] in _MISSING_SCHEMA_ERRORS:
            return None
        raise
    if not row:
        return None
    value = row["config_current_database_version"] if isinstance(row, dict) else row[0]
    if isinstance(value, bytes):
        value = value.decode("utf-8")
    return None if value is None else str(value)
