"""Everything flowsafe does with restic, and the only module that runs it.

It owns the restic command lines, the child's environment (repository URL,
password file, cache directory and backend credentials travel there, never in
argv), parsing restic's JSON output, and turning restic's failures into
one-line flowsafe errors (see ``Restic._failure``). Supports restic 0.14 and
newer: 0.14 exits only with 0, 1 or 3 and reports a short snapshot id in the
backup summary; 0.17 added the exit codes 10, 11 and 12, used when present.
"""

from __future__ import annotations

import functools
import json
import logging
import re
import signal
import tempfile
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
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


@functools.cache
def _version_of(program: str) -> tuple[int, int, int]:
    version = parse_version(run([program, "version"]).stdout.decode("utf-8", "replace"))
    if version < MIN_VERSION:
        shown = ".".join(map(str, version))
        raise ToolMissingError(f"restic {shown} at {program} is too old: {INSTALL_HINTS['restic']}")
    return version


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
        if not self.repo.password_file.is_file():
            raise ConfigError(
                f"restic password file {self.repo.password_file} does not exist: "
                "restore it from your off-machine copy, or fix password_file in the config"
            )
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
        return ["restic", *args]

    def _run(self, *args: str, input: bytes | None = None) -> Result:
        result = run(self._argv(args), env=self._env(), check=False, input=input)
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

    def unlock(self) -> None:
        """Remove stale locks only (locks of processes that are gone)."""
        self._run("unlock")

    def check(self, read_data_subset: str | None = None) -> None:
        """``restic check``; damage found raises VerificationError."""
        args = ["check"]
        if read_data_subset is not None:
            args += ["--read-data-subset", read_data_subset]
        try:
            self._run(*args)
        except ToolError as error:
            raise VerificationError(
                f"restic check found problems in {self.repo.display_url}: {error.stderr_tail}"
            ) from error

    def raw_size(self) -> int:
        """Bytes the repository stores (after deduplication and compression)."""
        return int(self._json("stats", "--mode", "raw-data")["total_size"])

    # -- snapshots --------------------------------------------------------

    def backup(
        self,
        paths: Sequence[Path],
        *,
        tags: Sequence[str],
        host: str,
        excludes: Sequence[str] = (),
        on_progress: Callable[[Progress], None] | None = None,
    ) -> BackupSummary:
        """Back up ``paths`` into a new snapshot, reporting progress as restic streams it.

        Exit code 3 raises PartialBackupError, which carries the written snapshot's id.
        """
        args = ["backup", "--json", "--compression", "auto", "--host", host]
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
        self, *, tags: Sequence[str], keep: Mapping[str, int], prune: bool, dry_run: bool
    ) -> ForgetResult:
        """Apply a retention policy to all snapshots with ``tags``, as one group.

        ``keep`` maps last/daily/weekly/monthly/yearly to counts; 0 means not used.
        """
        unknown = sorted(set(keep) - set(KEEP_POLICIES))
        if unknown or any(n < 0 for n in keep.values()):
            raise ConfigError(
                f"bad retention policy {dict(keep)!r}: use non-negative counts for "
                f"{', '.join(KEEP_POLICIES)}"
            )
        if not any(keep.values()):
            raise ConfigError("the retention policy keeps nothing: set at least one keep count")
        args = ["forget", "--group-by", ""]
        if tags:
            args += ["--tag", _tag_list(tags)]
        args += [f"--keep-{name}={count}" for name, count in keep.items() if count]
        if prune:
            args.append("--prune")
        if dry_run:
            args.append("--dry-run")
        groups = self._json(*args) or []
        return ForgetResult(
            kept=[s["id"] for g in groups for s in g.get("keep") or []],
            removed=[s["id"] for g in groups for s in g.get("remove") or []],
        )

    def backup_bytes(self, data: bytes, *, filename: str, tags: Sequence[str], host: str) -> str:
        """Store ``data`` as a one-file snapshot (a small record); returns its id."""
        out = self._run("--json", "backup", "--stdin", "--stdin-filename", filename, "--host",
                        host, "--tag", _tag_list(tags), input=data).stdout
        summary = [m for m in _json_messages(out.splitlines())
                   if m.get("message_type") == "summary"]
        if not summary:
            raise ToolError("restic", 0, "backup --stdin printed no summary")
        return self._full_id(str(summary[0]["snapshot_id"]))

    def dump(self, snapshot_id: str, path: str) -> bytes:
        """The content of one (small) file in a snapshot."""
        return self._run("dump", snapshot_id, path).stdout

    @contextmanager
    def dump_stream(self, snapshot_id: str, path: str) -> Iterator[IO[bytes]]:
        """``restic dump`` as a stream (a folder comes as a tar); its exit is checked after."""
        with tempfile.TemporaryFile() as errors:
            process = spawn(self._argv(["dump", snapshot_id, path]), env=self._env(),
                            stderr=errors.fileno())
            assert process.stdout is not None
            try:
                yield process.stdout
                while process.stdout.read(1 << 20):  # the tar's padding, or what was not read
                    pass
                code = process.wait()
            except BaseException:
                stop(process, signal.SIGINT, _STOP_TIMEOUT)
                raise
            finally:
                process.stdout.close()
            if code != 0:
                errors.seek(0)
                raise self._failure(code, errors.read())

    def restore(self, snapshot_id: str, target: Path, includes: Sequence[str] = ()) -> None:
        """Restore a snapshot (or only ``includes``) below ``target``."""
        args = ["restore", snapshot_id, "--target", str(target)]
        for pattern in includes:
            args += ["--include", pattern]
        self._run(*args)
