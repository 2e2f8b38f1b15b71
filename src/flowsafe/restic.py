"""Everything flowsafe does with restic, and the only module that runs it.

It owns the restic command lines, the child's environment (repository URL,
password file, cache directory and backend credentials travel there, never in
argv; a cache on a full disk is skipped, as restic hangs on it), parsing restic's
JSON output, and turning restic's failures into
one-line flowsafe errors (see ``Restic._failure``). Supports restic 0.14 and
newer: 0.14 exits only with 0, 1 or 3 and reports a short snapshot id in the
backup summary; 0.17 added the exit codes 10, 11 and 12, used when present.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import re
import shutil
import signal
import subprocess
import tarfile
import tempfile
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import IO, Any

from flowsafe.errors import (
    ConfigError,
    FlowsafeError,
    LockedError,
    ToolError,
    ToolMissingError,
    VerificationError,
)
from flowsafe.execute import INSTALL_HINTS, Result, require, run, spawn, stop, tail
from flowsafe.secret import Secret

log = logging.getLogger(__name__)

MIN_VERSION = (0, 14, 0)
KEEP_POLICIES = ("last", "daily", "weekly", "monthly", "yearly")

EXIT_PARTIAL = 3  # backup: snapshot written, some source files unreadable
_EXIT_NO_REPOSITORY = 10  # restic >= 0.17
_EXIT_LOCKED = 11  # restic >= 0.17
_EXIT_WRONG_PASSWORD = 12  # restic >= 0.17

# Substrings of "unable to open config file: ..." that mean nothing is there
# (local, S3, SFTP, REST and B2 backends), as opposed to "could not look".
_NOT_FOUND_MARKERS = ("no such file or directory", "does not exist", "nosuchbucket", "404")
_STOP_TIMEOUT = 10.0


class RepositoryMissingError(ConfigError):
    """There is no restic repository at the URL (nothing there to open)."""


class WrongPasswordError(ConfigError):
    """The password file does not open the repository."""


class PartialBackupError(ToolError):
    """restic exit code 3: the snapshot WAS written, but some files could not be read."""

    def __init__(self, summary: BackupSummary, unreadable: Sequence[str], stderr_tail: str) -> None:
        self.summary = summary
        self.snapshot_id = summary.snapshot_id
        self.unreadable = list(unreadable)
        shown = ", ".join(self.unreadable[:3]) or "see restic's messages"
        hint = (
            f"snapshot {summary.snapshot_id[:8]} was written but is incomplete: "
            f"{len(self.unreadable)} file(s) could not be read: {shown}"
        )
        super().__init__("restic backup", EXIT_PARTIAL, stderr_tail, hint)


@dataclass(frozen=True)
class Repository:
    """Where a restic repository is and how to open it."""

    url: str
    password_file: Path
    environment: Mapping[str, Secret] = field(default_factory=dict)
    cache_dir: Path | None = None

    @property
    def display_url(self) -> str:
        """The URL for messages, with any password in it (rest:https://u:p@...) hidden."""
        return re.sub(r"(://[^/@:]+:)[^/@]+@", r"\1***@", self.url)


def local_folder(url: str) -> Path | None:
    """The folder of a repository URL restic reaches as a local path (``local:`` or no
    backend scheme), else None (s3:, sftp:, rest:, b2:, rclone: ...)."""
    if url.startswith("local:"):
        return Path(url.removeprefix("local:"))
    return None if ":" in url.split("/", 1)[0] else Path(url)


@dataclass(frozen=True)
class Snapshot:
    id: str
    short_id: str
    time: datetime
    hostname: str
    paths: list[str]
    tags: list[str]

    def tag_value(self, key: str) -> str | None:
        """The value of the first ``key:value`` tag, or None."""
        prefix = f"{key}:"
        return next((t[len(prefix) :] for t in self.tags if t.startswith(prefix)), None)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Snapshot:
        return cls(
            id=data["id"],
            short_id=data["short_id"],
            time=datetime.fromisoformat(data["time"]),
            hostname=data.get("hostname", ""),
            paths=list(data.get("paths") or []),
            tags=list(data.get("tags") or []),
        )


@dataclass(frozen=True)
class BackupSummary:
    snapshot_id: str  # always the full id
    files_new: int
    files_changed: int
    files_unmodified: int
    data_added: int
    total_files_processed: int
    total_bytes_processed: int
    duration: float


@dataclass(frozen=True)
class Progress:
    percent_done: float  # 0.0 .. 1.0
    bytes_done: int
    total_bytes: int
    files_done: int
    total_files: int


@dataclass(frozen=True)
class CopyResult:
    """What one ``restic copy`` did: snapshots newly copied, and those already there."""

    copied: int
    skipped: int


@dataclass(frozen=True)
class ForgetResult:
    kept: list[str]  # full snapshot ids
    removed: list[str]  # full snapshot ids (only "would be removed" on a dry run)


def parse_version(text: str) -> tuple[int, int, int]:
    """The version in ``restic version`` output ("restic 0.14.0 compiled with ...")."""
    found = re.search(r"restic (\d+)\.(\d+)\.(\d+)", text)
    if found is None:
        raise ToolMissingError(f"cannot tell the version of restic from {text.strip()!r}")
    major, minor, patch = (int(part) for part in found.groups())
    return major, minor, patch


CACHE_MIN_FREE = 64 << 20  # below this, restic runs without its cache (it hangs on a full one)


def _room_for_cache(folder: Path) -> bool:
    """Whether the cache's file system has room; warns (once per folder) when it has not."""
    here = folder
    while not here.exists() and here != here.parent:
        here = here.parent
    if shutil.disk_usage(here).free >= CACHE_MIN_FREE:
        return True
    if folder not in _WARNED_CACHE:
        _WARNED_CACHE.add(folder)
        log.warning("less than %d MiB free for restic's cache in %s: running restic without "
                    "its cache (slower); free space there", CACHE_MIN_FREE >> 20, folder)
    return False


_WARNED_CACHE: set[Path] = set()


@functools.cache
def _version_of(program: str) -> tuple[int, int, int]:
    version = parse_version(run([program, "version"]).stdout.decode("utf-8", "replace"))
    if version < MIN_VERSION:
        shown = ".".join(map(str, version))
        raise ToolMissingError(f"restic {shown} at {program} is too old: {INSTALL_HINTS['restic']}")
    return version


def pattern(path: str) -> str:
    """A path as a restic --include/--exclude pattern that matches only itself."""
    return "".join("\\" + c if c in "*?[]\\" else c for c in path)


def _tag_list(tags: Sequence[str]) -> str:
    """Tags as one restic ``--tag`` value (restic ANDs the members of one value)."""
    bad = [t for t in tags if "," in t or not t]
    if bad:
        raise ConfigError(f"restic tags must be non-empty and contain no comma: {bad!r}")
    return ",".join(tags)


def _json_messages(lines: Iterable[bytes | str]) -> Iterator[dict[str, Any]]:
    """The JSON objects among restic's output lines; other lines are logged and skipped."""
    for raw in lines:
        line = (raw.decode("utf-8", "replace") if isinstance(raw, bytes) else raw).strip()
        try:
            message = json.loads(line)
        except json.JSONDecodeError:
            if line:
                log.debug("restic: %s", line)
            continue
        if isinstance(message, dict):
            yield message


def _progress(status: Mapping[str, Any]) -> Progress:
    """A Progress from a restic status message (restic leaves zero fields out)."""
    return Progress(
        percent_done=float(status.get("percent_done", 0.0)),
        bytes_done=int(status.get("bytes_done", 0)),
        total_bytes=int(status.get("total_bytes", 0)),
        files_done=int(status.get("files_done", 0)),
        total_files=int(status.get("total_files", 0)),
    )


class Restic:
    """restic commands against one repository."""

    def __init__(self, repo: Repository) -> None:
        self.repo = repo

    # -- plumbing ---------------------------------------------------------

    def version(self) -> tuple[int, int, int]:
        """The installed restic's version (asked once per binary); too old raises."""
        return _version_of(require("restic"))

    def _env(self) -> dict[str, str]:
        """What only the restic child gets. Empty values mask the caller's own settings."""
        password = self.repo.password_file
        if not password.is_file():
            raise ConfigError(
                f"restic password file {password} does not exist: "
                "restore it from your off-machine copy, or fix password_file in the config"
            )
        if password.stat().st_mode & 0o077:
            raise ConfigError(f"restic password file {password} is readable by other users: "
                              f"chmod 600 {password}")
        env = {name: value.reveal() for name, value in self.repo.environment.items()}
        env.update(
            RESTIC_REPOSITORY=self.repo.url,
            RESTIC_REPOSITORY_FILE="",
            RESTIC_PASSWORD_FILE=str(self.repo.password_file),
            RESTIC_PASSWORD="",
            RESTIC_PASSWORD_COMMAND="",
        )
        if self.repo.cache_dir is not None:
            env["RESTIC_CACHE_DIR"] = str(self.repo.cache_dir)
        return env

    def _argv(self, args: Sequence[str]) -> list[str]:
        self.version()
        if self.repo.cache_dir is not None and not _room_for_cache(self.repo.cache_dir):
            return ["restic", "--no-cache", *args]
        return ["restic", *args]

    def _source_env(self, source: Restic) -> dict[str, str]:
        """The ``--from-*`` side of copy and init: ``source``'s location and password, and
        its backend credentials, which restic shares between both repositories."""
        env = self._env()
        theirs = source._env()
        clash = sorted(k for k, v in source.repo.environment.items()
                       if k in env and env[k] != v.reveal())
        if clash:
            raise ConfigError(
                f"{source.repo.display_url} and {self.repo.display_url} need different "
                f"{', '.join(clash)}: restic gives both repositories of a copy the same "
                "backend credentials; use one set of credentials for both"
            )
        env.update({k: v for k, v in theirs.items() if not k.startswith("RESTIC_")})
        env.update(
            RESTIC_FROM_REPOSITORY=source.repo.url,
            RESTIC_FROM_REPOSITORY_FILE="",
            RESTIC_FROM_PASSWORD_FILE=str(source.repo.password_file),
            RESTIC_FROM_PASSWORD_COMMAND="",
        )
        return env

    def _run(self, *args: str, input: bytes | None = None,
             env: Mapping[str, str] | None = None) -> Result:
        result = run(self._argv(args), env=env or self._env(), check=False, input=input)
        if result.code != 0:
            raise self._failure(result.code, result.stderr)
        return result

    def _json(self, *args: str) -> Any:
        """Run with ``--json``; the first JSON value on stdout (prune may print text after it)."""
        text = self._run("--json", *args).stdout.decode("utf-8").lstrip()
        return json.JSONDecoder().raw_decode(text)[0] if text else None

    def _failure(self, code: int, stderr: bytes | str) -> FlowsafeError:
        """The one place that turns a failed restic run into a flowsafe error."""
        text = stderr.decode("utf-8", "replace") if isinstance(stderr, bytes) else stderr
        lowered = text.lower()
        url = self.repo.display_url
        if code == _EXIT_LOCKED or "repository is already locked" in lowered:
            holder = re.search(r"already locked (?:exclusively )?by (.+)", text)
            who = holder.group(1).strip() if holder else "another restic process"
            return LockedError(
                f"restic repository {url} is locked by {who}: wait for it to finish; "
                "if that process is gone, unlock the repository (stale locks only)"
            )
        if code == _EXIT_WRONG_PASSWORD or "wrong password or no key found" in lowered:
            return WrongPasswordError(
                f"wrong password for restic repository {url}: check {self.repo.password_file}"
            )
        cannot_open = "unable to open config file" in lowered
        if code == _EXIT_NO_REPOSITORY or (
            cannot_open and any(marker in lowered for marker in _NOT_FOUND_MARKERS)
        ):
            return RepositoryMissingError(
                f"no restic repository at {url}: run `flowsafe init` or check the URL"
            )
        if cannot_open:
            fatal = re.search(r"^Fatal: (.+)$", text, re.MULTILINE)
            reason = fatal.group(1) if fatal else tail(text, 1)
            return FlowsafeError(
                f"cannot open restic repository {url} (check the URL, the network and the "
                f"credentials): {reason}"
            )
        if "unable to create lock in backend" in lowered:
            found = re.search(r"^.*(read-only file system|permission denied).*$", text,
                              re.MULTILINE | re.IGNORECASE)
            why = found.group(1).lower() if found else "it refused the lock file"
            return FlowsafeError(
                f"cannot write to restic repository {url} ({why}): restic could not create "
                "its lock; make the repository writable (its mount, its permissions), then "
                "run again")
        return ToolError("restic", code, tail(text))

    # -- repository -------------------------------------------------------

    def exists(self) -> bool:
        """True if a repository is there and the password opens it; False if nothing is there."""
        try:
            self._run("--no-lock", "cat", "config")
        except RepositoryMissingError:
            return False
        return True

    def init(self) -> None:
        """Create a repository (format 2, compression); never over an existing one."""
        if self.exists():
            raise ConfigError(
                f"a restic repository already exists at {self.repo.display_url}: "
                "refusing to initialize over it"
            )
        self._run("init", "--repository-version", "2")
        log.debug("initialized restic repository %s", self.repo.display_url)

    def init_like(self, source: Restic) -> None:
        """Create a format 2 repository with ``source``'s chunker parameters, so that
        snapshots copied from it deduplicate as they do there."""
        self._run("init", "--repository-version", "2", "--copy-chunker-params",
                  env=self._source_env(source))
        log.debug("initialized restic repository %s with the chunker parameters of %s",
                  self.repo.display_url, source.repo.display_url)

    def copy_from(self, source: Restic, selections: Sequence[Sequence[str]]) -> CopyResult:
        """Copy into this repository every snapshot of ``source`` that carries all tags of
        one of ``selections`` and is not here yet (restic skips those already copied, so
        an interrupted copy completes on the next call without duplicates)."""
        args = ["copy"]
        for tags in selections:
            args += ["--tag", _tag_list(tags)]
        out = self._run(*args, env=self._source_env(source)).stdout.decode("utf-8", "replace")
        return CopyResult(
            copied=len(re.findall(r"^snapshot \w+ saved", out, re.MULTILINE)),
            skipped=len(re.findall(r"^skipping (?:source )?snapshot", out, re.MULTILINE)),
        )

    def unlock(self) -> None:
        """Remove stale locks only (locks of processes that are gone)."""
        self._run("unlock")

    def check(self, read_data_subset: str | None = None, *, lock: bool = True) -> None:
        """``restic check``; damage found raises VerificationError. Without ``lock`` it runs
        beside other readers (restore, dump), but a concurrent prune could make it fail."""
        args = ["check"] if lock else ["--no-lock", "check"]
        if read_data_subset is not None:
            args += ["--read-data-subset", read_data_subset]
        try:
            self._run(*args)
        except ToolError as error:
            raise VerificationError(
                f"restic check found problems in {self.repo.display_url}: {error.stderr_tail}"
            ) from error

    def raw_size(self) -> int:
        """Bytes the repository stores (after deduplication and compression). A local
        repository is measured on disk (its files' sizes: instant); for a backend,
        ``restic stats --mode raw-data`` reads every snapshot's tree (seconds)."""
        local = local_folder(self.repo.url)
        if local is None:
            return int(self._json("stats", "--mode", "raw-data")["total_size"])
        total = 0
        for folder, _dirs, files in os.walk(local):
            for name in files:
                with suppress(FileNotFoundError):  # a lock that just went
                    total += os.stat(os.path.join(folder, name), follow_symlinks=False).st_size
        return total

    # -- snapshots --------------------------------------------------------

    def backup(
        self,
        paths: Sequence[Path],
        *,
        tags: Sequence[str],
        host: str,
        time: datetime | None = None,
        excludes: Sequence[str] = (),
        on_progress: Callable[[Progress], None] | None = None,
    ) -> BackupSummary:
        """Back up ``paths`` into a new snapshot, reporting progress as restic streams it;
        ``time`` is the snapshot's time (default: now).

        Exit code 3 raises PartialBackupError, which carries the written snapshot's id.
        """
        args = ["backup", "--json", "--compression", "auto", "--host", host]
        if time is not None:
            args += ["--time", time.astimezone().strftime("%Y-%m-%d %H:%M:%S")]
        if tags:
            args += ["--tag", _tag_list(tags)]
        for pattern in excludes:
            args += ["--exclude", pattern]
        args += ["--", *(str(p) for p in paths)]
        env = self._env()
        summary: dict[str, Any] | None = None
        with tempfile.TemporaryFile() as errors:
            process = spawn(self._argv(args), env=env, stderr=errors.fileno())
            assert process.stdout is not None
            try:
                for message in _json_messages(process.stdout):
                    if message.get("message_type") == "summary":
                        summary = message
                    elif message.get("message_type") == "status" and on_progress is not None:
                        on_progress(_progress(message))
                code = process.wait()
            except BaseException:
                # SIGINT lets restic remove its lock before it exits.
                stop(process, signal.SIGINT, _STOP_TIMEOUT)
                raise
            errors.seek(0)
            stderr = errors.read().decode("utf-8", "replace")
        if stderr:
            log.debug("restic backup stderr: %s", tail(stderr, 20))
        if summary is None or code not in (0, EXIT_PARTIAL):
            raise self._failure(code, stderr)
        result = BackupSummary(
            snapshot_id=self._full_id(summary["snapshot_id"]),
            files_new=summary.get("files_new", 0),
            files_changed=summary.get("files_changed", 0),
            files_unmodified=summary.get("files_unmodified", 0),
            data_added=summary.get("data_added", 0),
            total_files_processed=summary.get("total_files_processed", 0),
            total_bytes_processed=summary.get("total_bytes_processed", 0),
            duration=summary.get("total_duration", 0.0),
        )
        if code == EXIT_PARTIAL:
            unreadable = [
                str(m.get("item", "?"))
                for m in _json_messages(stderr.splitlines())
                if m.get("message_type") == "error"
            ]
            readable = "\n".join(line for line in stderr.splitlines() if not line.startswith("{"))
            raise PartialBackupError(result, unreadable, tail(readable))
        return result

    def _full_id(self, snapshot_id: str) -> str:
        """restic 0.14 reports a short id in the backup summary; newer ones the full id."""
        if len(snapshot_id) == 64:
            return snapshot_id
        folder = local_folder(self.repo.url)
        if folder is not None:  # a snapshot's file is named by its id: no restic call
            named = [p.name for p in (folder / "snapshots").glob(f"{snapshot_id}*")]
            if len(named) == 1 and re.fullmatch(r"[0-9a-f]{64}", named[0]):
                return named[0]
        found = self._json("--no-lock", "snapshots", snapshot_id)
        return str(found[0]["id"])

    def snapshots(self, tags: Sequence[str] = ()) -> list[Snapshot]:
        """Snapshots that carry all of ``tags``, oldest first."""
        args = ["--no-lock", "snapshots"]
        if tags:
            args += ["--tag", _tag_list(tags)]
        found = [Snapshot.from_json(s) for s in self._json(*args) or []]
        return sorted(found, key=lambda s: s.time)

    def forget(
        self, *, tag_sets: Sequence[Sequence[str]], keep: Mapping[str, int | str],
        dry_run: bool
    ) -> ForgetResult:
        """Apply a retention policy to the snapshots that carry all the tags of any one of
        ``tag_sets``, as one group (no prune: see ``prune``).

        ``keep`` maps last/daily/weekly/monthly/yearly to counts (0: not used), or
        ``within`` to a duration like ``7d``.
        """
        unknown = sorted(set(keep) - {*KEEP_POLICIES, "within"})
        counts = [n for k, n in keep.items() if k != "within"]
        if unknown or any(not isinstance(n, int) or n < 0 for n in counts):
            raise ConfigError(
                f"bad retention policy {dict(keep)!r}: use non-negative counts for "
                f"{', '.join(KEEP_POLICIES)}"
            )
        if not any(keep.values()):
            raise ConfigError("the retention policy keeps nothing: set at least one keep count")
        if not tag_sets:
            return ForgetResult(kept=[], removed=[])
        args = ["forget", "--group-by", ""]
        for tags in tag_sets:
            args += ["--tag", _tag_list(tags)]
        args += [f"--keep-{name}={count}" for name, count in keep.items() if count]
        if dry_run:
            args.append("--dry-run")
        groups = self._json(*args) or []
        return ForgetResult(
            kept=[s["id"] for g in groups for s in g.get("keep") or []],
            removed=[s["id"] for g in groups for s in g.get("remove") or []],
        )

    def forget_ids(self, ids: Sequence[str]) -> None:
        """Forget these snapshots (no prune)."""
        if ids:
            self._run("forget", *ids)

    def prune(self) -> None:
        """Remove the data no snapshot references any more."""
        self._run("prune")

    def forget_older(self, tags: Sequence[str], within: str) -> None:
        """Forget (without pruning) the snapshots with all ``tags`` older than ``within``
        (restic's duration, e.g. ``400d``): how small records are aged out."""
        self._run("forget", "--group-by", "", "--tag", _tag_list(tags), "--keep-within", within)

    def backup_bytes(self, data: bytes, *, filename: str, tags: Sequence[str], host: str,
                     full_id: bool = True) -> str:
        """Store ``data`` as a one-file snapshot (a small record); returns its id (restic
        0.14 prints a short one: ``full_id`` asks once more for the full one)."""
        out = self._run("--json", "backup", "--stdin", "--stdin-filename", filename, "--host",
                        host, "--tag", _tag_list(tags), input=data).stdout
        summary = [m for m in _json_messages(out.splitlines())
                   if m.get("message_type") == "summary"]
        if not summary:
            raise ToolError("restic", 0, "backup --stdin printed no summary")
        short = str(summary[0]["snapshot_id"])
        return self._full_id(short) if full_id else short

    def dump(self, snapshot_id: str, path: str) -> bytes:
        """The content of one (small) file in a snapshot."""
        return self._run("dump", snapshot_id, path).stdout

    @contextmanager
    def dump_stream(self, snapshot_id: str, path: str) -> Iterator[IO[bytes]]:
        """A folder of a snapshot as the tar stream ``restic dump`` writes, read as it
        arrives (one restic run, one index load). A restic failure raises when the block
        ends; leaving the block early stops restic."""
        with tempfile.TemporaryFile() as errors:
            process = spawn(self._argv(["dump", snapshot_id, path]), env=self._env(),
                            stderr=errors.fileno())
            assert process.stdout is not None
            try:
                with process.stdout:
                    yield process.stdout
                    while process.stdout.read(1 << 16):
                        pass  # what the reader left (tar padding): restic must not hit EPIPE
            except BaseException as exc:
                broken = isinstance(exc, tarfile.TarError)  # restic stopped writing: exiting
                with suppress(subprocess.TimeoutExpired):
                    process.wait(_STOP_TIMEOUT if broken else 0)
                died = process.poll()
                stop(process, signal.SIGINT, _STOP_TIMEOUT)
                if died == -signal.SIGPIPE:  # we stopped reading first: not restic's failure
                    died = None
                if died and isinstance(exc, Exception):  # the stream broke because restic did
                    errors.seek(0)
                    raise self._failure(died, errors.read()) from None
                if broken:
                    raise VerificationError(
                        f"the tar stream of {path} that restic dump wrote is broken ({exc}); "
                        "run `flowsafe drill` to check the repository") from None
                raise
            code = process.wait()
            if code != 0:
                errors.seek(0)
                raise self._failure(code, errors.read())

    def restore(self, snapshot_id: str, target: Path, includes: Sequence[str] = ()) -> None:
        """Restore a snapshot (or only ``includes``) below ``target``."""
        args = ["restore", snapshot_id, "--target", str(target)]
        for pattern in includes:
            args += ["--include", pattern]
        self._run(*args)
