"""Runs the real ``flowsafe`` command in a child process, as a user would."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from flowsafe.mariadb.connection import DbTarget
from flowsafe.mariadb.instance import PrivateServer
from flowsafe.sample import SampleSite


def flowsafe(
    config: Path, *args: str, env: Mapping[str, str] | None = None, timeout: float = 240
) -> subprocess.CompletedProcess[str]:
    """``flowsafe --config CONFIG ARGS...``; returns the finished process."""
    full_env = {**os.environ, "COLUMNS": "200", **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "flowsafe", "--config", str(config), *args],
        capture_output=True,
        text=True,
        env=full_env,
        timeout=timeout,
        check=False,
    )


def start(config: Path, *args: str) -> subprocess.Popen[str]:
    """The same, left running (for kill and concurrency tests)."""
    return subprocess.Popen(
        [sys.executable, "-m", "flowsafe", "--config", str(config), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def children(pid: int) -> list[int]:
    """PIDs of every live process whose parent is ``pid``."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        if ppid == pid:
            found.append(int(entry.name))
    return found


def command_line(pid: int) -> str:
    try:
        return (
            (Path("/proc") / str(pid) / "cmdline")
            .read_bytes()
            .replace(b"\0", b" ")
            .decode("utf-8", "replace")
        )
    except OSError:
        return ""


def alive(pid: int) -> bool:
    try:
        state = (Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def wait_for_child(pid: int, name: str, seconds: float = 60) -> int:
    """The first child of ``pid`` whose program is ``name`` (polled every 5 ms)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        for child in children(pid):
            if name in command_line(child).split(" ")[0]:
                return child
        time.sleep(0.005)
    raise AssertionError(f"no {name} child of {pid} within {seconds} s")


@dataclass(frozen=True)
class Seen:
    """One process as the watcher saw it: its command line and its environment."""

    pid: int
    argv: str
    environ: str


def _environ(pid: int) -> str:
    try:
        return (Path("/proc") / str(pid) / "environ").read_bytes().decode("utf-8", "replace")
    except OSError:
        return ""


@contextmanager
def watch_processes(interval: float = 0.002) -> Iterator[list[Seen]]:
    """Collect every process's command line and environment, polled every ``interval``
    seconds, while the block runs (an environment is read again only when its process's
    command line changed, as it does at exec)."""
    seen: list[Seen] = []
    last: dict[int, str] = {}
    stop = threading.Event()

    def watch() -> None:
        while not stop.is_set():
            for entry in Path("/proc").iterdir():
                if not entry.name.isdigit():
                    continue
                pid = int(entry.name)
                line = command_line(pid)
                if line and last.get(pid) != line:
                    last[pid] = line
                    seen.append(Seen(pid, line, _environ(pid)))
            time.sleep(interval)

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        yield seen
    finally:
        stop.set()
        watcher.join()


class SiteUnderTest:
    """A sample site on a private server, with its flowsafe config, driven through the CLI."""

    def __init__(self, sample: SampleSite, server: PrivateServer, tmp: Path) -> None:
        self.sample = sample
        self.server = server
        self.tmp = tmp
        self.config = tmp / "etc" / "flowsafe.toml"

    @property
    def target(self) -> DbTarget:
        return self.server.target(self.sample.database)

    def run(self, *args: str, env: Mapping[str, str] | None = None
            ) -> subprocess.CompletedProcess[str]:
        return flowsafe(self.config, *args, env=env)

    def ok(self, *args: str) -> subprocess.CompletedProcess[str]:
        done = self.run(*args)
        assert done.returncode == 0, (args, done.stdout, done.stderr)
        return done

    def snapshots(self) -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = json.loads(self.ok("snapshots", "--json").stdout)
        return rows

    def restic(self, *args: str) -> str:
        """Plain ``restic ARGS...`` on the site's repository (what anyone with its password
        can run); returns stdout."""
        env = {**os.environ, "RESTIC_REPOSITORY": str(self.tmp / "repo"),
               "RESTIC_PASSWORD_FILE": str(self.config.parent / "default.password")}
        return subprocess.run(["restic", *args], env=env, capture_output=True, text=True,
                              check=True).stdout

    def rewrite_snapshot(self, source: str, change: Callable[[Path], object],
                         tags: str = "flowsafe,site:itflow,reason:nightly",
                         keep_signature: bool = True, time: datetime | None = None) -> str:
        """What anyone with the repository password can do: a new snapshot from an old
        one's files, altered by ``change`` (given the staging copy), with its signature tag
        copied or not, and the old snapshot's time (or ``time``). Returns the new id."""
        listed = json.loads(self.restic("snapshots", "--json", source))[0]
        staging = self.tmp / "state" / "staging" / "itflow"
        copy_root = self.tmp / f"copy-{len(list(self.tmp.glob('copy-*')))}"
        self.restic("restore", source, "--target", str(copy_root), "--include", str(staging))
        copy = copy_root / str(staging).lstrip("/")
        change(copy)
        shutil.copytree(copy, staging)
        extra = [t for t in listed["tags"] if t.startswith("sig:")] if keep_signature else []
        stamp = (time or datetime.fromisoformat(listed["time"])).astimezone().strftime(
            "%Y-%m-%d %H:%M:%S")
        out = self.restic("backup", "--json", "--tag", ",".join([tags, *extra]), "--time",
                          stamp, str(staging), str(self.sample.path), "--exclude",
                          str(self.sample.path / "uploads" / "tmp"))
        shutil.rmtree(staging)
        summary = next(json.loads(line) for line in out.splitlines() if '"summary"' in line)
        return str(summary["snapshot_id"])


def edit_config(path: Path, *, after: dict[str, str] | None = None,
                replace: dict[str, str] | None = None, append: str = "") -> None:
    """Change a written config as an admin would: insert lines after a line, replace
    lines, append tables. Every anchor must be there."""
    text = path.read_text()
    for old, new in (replace or {}).items():
        assert old in text, old
        text = text.replace(old, new)
    for anchor, line in (after or {}).items():
        assert anchor in text, anchor
        text = text.replace(anchor, f"{anchor}\n{line}", 1)
    path.write_text(text + ("\n" + append if append else ""))
