"""What a test reads of a site to tell whether production changed: database checksums,
file digests, and the scratch parts a restore may leave behind."""

from __future__ import annotations

import hashlib
import json
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from flowsafe.mariadb.connection import DbTarget, connect
from flowsafe.mariadb.instance import PrivateServer
from flowsafe.sample import SampleSite
from tests.cli import SiteUnderTest


def db_state(target: DbTarget) -> dict[str, int]:
    """Table -> CHECKSUM TABLE, the content of a whole database."""
    with connect(target) as conn, conn.cursor() as cur:
        cur.execute("SHOW FULL TABLES WHERE Table_type = 'BASE TABLE'")
        tables = sorted(str(row[0]) for row in cur.fetchall())
        state = {}
        for table in tables:
            cur.execute(f"CHECKSUM TABLE `{table}` EXTENDED")
            row = cur.fetchone()
            state[table] = int(row[1]) if row and row[1] is not None else -1
    return state


def tree_state(root: Path) -> dict[str, tuple[str, int, int]]:
    """Relative path -> (sha256, mode, uid) for every file below ``root``."""
    state = {}
    for path in sorted(root.rglob("*")):
        info = path.lstat()
        digest = hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else "dir"
        state[str(path.relative_to(root))] = (digest, info.st_mode, info.st_uid)
    return state


class Site(SiteUnderTest):
    """A sample site with a config whose database user is root (restores need CREATE)."""

    def __init__(self, sample: SampleSite, server: PrivateServer, tmp: Path) -> None:
        super().__init__(sample, server, tmp)
        self.state = tmp / "state"

    def snapshot_state(self) -> tuple[dict[str, int], dict[str, tuple[str, int, int]]]:
        return db_state(self.target), tree_state(self.sample.path)

    def leftovers(self) -> list[str]:
        """Scratch databases and sibling folders that a restore may leave."""
        with connect(self.server.target()) as conn, conn.cursor() as cur:
            cur.execute("SHOW DATABASES")
            scratch = f"{self.target.database[:40]}__new_"  # this site's (restore.side_name)
            dbs = [str(r[0]) for r in cur.fetchall() if str(r[0]).startswith(scratch)]
        dirs = [p.name for p in self.sample.path.parent.iterdir()
                if ".flowsafe-new" in p.name or ".landing-" in p.name]
        return dbs + dirs

    def journal(self) -> dict[str, Any]:
        state: dict[str, Any] = json.loads(
            (self.state / "restore" / "itflow" / "journal.json").read_text())
        return state


@contextmanager
def mounted(target: Path, *options: str, kind: str = "tmpfs", source: str = "tmpfs"
            ) -> Iterator[Path]:
    """A mount on ``target`` for the block (a small tmpfs to fill a disk, or a read-only
    bind); tests run as root, and failing to mount fails the test."""
    target.mkdir(parents=True, exist_ok=True)
    argv = ["mount", "-t", kind, *options, source, str(target)]
    if kind == "bind":
        argv = ["mount", "--bind", source, str(target)]
    done = subprocess.run(argv, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        pytest.fail(f"cannot mount on {target} (the tests need root): {done.stderr.strip()}")
    try:
        if kind == "bind" and options:
            subprocess.run(["mount", "-o", f"remount,bind,{','.join(options)}", str(target)],
                           check=True)
        yield target
    finally:
        subprocess.run(["umount", "-l", str(target)], check=False)
