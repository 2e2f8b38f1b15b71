"""The site's git clone, as its owner sees it: HEAD, the upstream branch and commit, a
fetch, local changes, and the versions the upstream commit's files declare.

git refuses to work in a repository owned by someone else, so every command runs as
the owner of ``.git``, with a clean environment and no terminal prompts.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from flowsafe import execute
from flowsafe.errors import ConfigError, FlowsafeError
from flowsafe.itflow.versions import (
    APP_VERSION_FILE,
    DATABASE_UPDATES_DIR,
    DATABASE_VERSION_FILE,
    app_version_in,
    expected_schema_in,
)
from flowsafe.local_users import Account

GIT_TIMEOUT = 60.0
FETCH_TIMEOUT = 600.0


class GitError(FlowsafeError):
    """A git command failed."""


@dataclass(frozen=True)
class Clone:
    """A site folder that is a git clone, and the account git runs as there."""

    path: Path
    owner: Account

    @classmethod
    def open(cls, path: Path, site: str) -> Clone:
        """The clone at ``path``; ``ConfigError`` when it is not one or its owner is unknown."""
        dot_git = path / ".git"
        if not dot_git.exists():
            raise ConfigError(
                f"site '{site}' at {path} is not a git clone (no .git): ITFlow's updater "
                "needs one; update this install by hand, or reinstall it with git clone")
        uid = dot_git.stat().st_uid
        owner = Account.of_uid(uid)
        if owner is None:
            raise ConfigError(
                f"cannot tell who owns site '{site}': {dot_git} belongs to uid {uid}, which "
                f"has no account here; chown the site to its web user (e.g. chown -R "
                f"www-data: {path}) or set run_as under [sites.{site}.update]")
        clone = cls(path, owner)
        clone.git("rev-parse", "--is-inside-work-tree")
        return clone

    def git(self, *args: str, timeout: float = GIT_TIMEOUT) -> str:
        """Run ``git args...`` in the clone as its owner; its stdout (no blank end lines)."""
        lines: list[str] = []

        def keep(stream: str, line: str) -> None:
            if stream == "stdout":
                lines.append(line)

        env = {"GIT_TERMINAL_PROMPT": "0", "LC_ALL": "C"}
        done = execute.run_lines(["git", *args], on_line=keep, timeout=timeout, env=env,
                                 cwd=str(self.path), account=self.owner)
        if done.timed_out:
            raise GitError(f"git {args[0]} in {self.path} did not finish within {timeout:g} s")
        if done.code != 0:
            raise GitError(f"git {' '.join(args)} in {self.path} failed (exit code "
                           f"{done.code}): {done.stderr_tail}")
        return "\n".join(lines).strip("\n")

    def head(self) -> str:
        return self.git("rev-parse", "HEAD")

    def upstream(self, site: str) -> str:
        """The remote branch the checked-out branch tracks (``origin/master``)."""
        try:
            return self.git("rev-parse", "--abbrev-ref", "--symbolic-full-name", "@{u}")
        except GitError:
            raise ConfigError(
                f"the checkout of site '{site}' tracks no upstream branch: ITFlow's updater "
                f"runs a plain git pull, which needs one (git -C {self.path} branch "
                "--set-upstream-to=origin/master)") from None

    def fetch(self) -> None:
        self.git("fetch", "--quiet", timeout=FETCH_TIMEOUT)

    def local_changes(self) -> list[str]:
        """Tracked files that differ from HEAD (they would stop or spoil a pull)."""
        status = self.git("status", "--porcelain", "--untracked-files=no")
        return [line[3:] for line in status.splitlines() if line.strip()]

    def versions_at(self, rev: str) -> tuple[str | None, str | None]:
        """``APP_VERSION`` and the expected schema version of the code at ``rev``."""
        app = self._show(rev, APP_VERSION_FILE)
        database_version = self._show(rev, DATABASE_VERSION_FILE)
        expected = None
        if database_version is not None:
            try:
                names = self.git("ls-tree", "--name-only", f"{rev}:{DATABASE_UPDATES_DIR}")
            except GitError:
                names = ""  # an older release: the version is a literal
            updates = [Path(n).stem for n in names.splitlines() if n.endswith(".php")]
            expected = expected_schema_in(database_version, updates)
        return (app_version_in(app) if app is not None else None), expected

    def _show(self, rev: str, relative: Path) -> str | None:
        try:
            return self.git("show", f"{rev}:{relative}")
        except GitError:
            return None
