"""``flowsafe update``: the safe ITFlow update, in one command, under the site's lock.

Preflight (a git clone, no local changes, known owner), ``git fetch`` and the plan
(current and available versions), then: 1. a ``pre-update`` backup; 2. each updater
command (by default ITFlow's ``update_cli.php --update``, then ``--update_db``: two
separate invocations); 3. flowsafe's own checks of the outcome (update/checks.py);
4. a ``post-update`` backup. A failed step stops the update with one line naming the
step, why, and the one ``flowsafe restore <pre-update id>`` command that puts the site
back; ``rollback`` runs that restore itself. ``dry_run`` stops after the plan.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Literal

from flowsafe import runs
from flowsafe.backup import ProgressFn, backup_site
from flowsafe.config import Config
from flowsafe.errors import ConfigError, FlowsafeError
from flowsafe.itflow.site import schema_version_in_use
from flowsafe.itflow.versions import compare_versions
from flowsafe.local_users import Account
from flowsafe.mariadb.connection import connect
from flowsafe.restore.plan import RestoreOptions
from flowsafe.restore.run import run_restore
from flowsafe.session import locked_site
from flowsafe.sites import Site, open_site
from flowsafe.update import checks
from flowsafe.update.git import Clone
from flowsafe.update.steps import SayFn, StepFailed, run_commands, transcript

UPDATER = Path("scripts/update_cli.php")


@dataclass(frozen=True)
class UpdateOptions:
    """What ``flowsafe update`` was asked to do."""

    dry_run: bool = False
    rollback: bool = False
    config_file: Path | None = None  # named in the restore command when given explicitly


@dataclass(frozen=True)
class UpdatePlan:
    """What is installed, what upstream has, and what the update will run."""

    site: str
    path: Path
    runner: str
    upstream: str
    current_commit: str
    available_commit: str
    current_app: str | None
    available_app: str | None
    schema_in_db: str | None
    expected_now: str | None
    expected_after: str | None
    commands: tuple[str, ...]

    @property
    def up_to_date(self) -> bool:
        schema_current = (self.schema_in_db is not None and self.expected_now is not None
                          and compare_versions(self.schema_in_db, self.expected_now) == 0)
        return self.current_commit == self.available_commit and schema_current

    def steps(self) -> list[str]:
        return [
            "pre-update backup (a snapshot with reason pre-update)",
            *(f"as {self.runner}: {command}" for command in self.commands),
            f"check: HEAD at {self.available_commit[:8]}, APP_VERSION {self.available_app}, "
            f"the code expects schema {self.expected_after} and the database holds it, no "
            "local changes, the login page answers",
            "post-update backup (reason post-update)",
        ]


@dataclass(frozen=True)
class UpdateResult:
    """How the update ended (when it did not fail)."""

    plan: UpdatePlan
    outcome: Literal["dry-run", "up-to-date", "cancelled", "updated"]
    pre_update: str | None = None
    post_update: str | None = None
    transcript: Path | None = None
    seconds: float = 0.0


class UpdateFailed(FlowsafeError):
    """A step failed: ``failure`` names it and says why; the message adds what to do next
    (the restore command, or what the rollback did)."""

    def __init__(self, failure: str, site: str, pre_update: str | None, next_step: str) -> None:
        self.failure = failure
        self.site = site
        self.pre_update = pre_update
        super().__init__(f"{failure}; {next_step}")


def _runner(site: Site, clone: Clone) -> Account:
    """Who runs the updater: ``run_as``, else the owner of update_cli.php (ITFlow refuses
    anyone else), else the owner of the clone."""
    wanted = site.config.update.run_as
    if wanted:
        account = Account.named(wanted)
        if account is None:
            raise ConfigError(f"run_as = '{wanted}' under [sites.{site.name}.update] names no "
                              "account on this machine: fix or empty it")
        return account
    updater = site.install.path / UPDATER
    if not updater.is_file():
        return clone.owner
    uid = updater.stat().st_uid
    account = Account.of_uid(uid)
    if account is None:
        raise ConfigError(f"cannot tell who owns site '{site.name}': {updater} belongs to uid "
                          f"{uid}, which has no account here; chown the site to its web user "
                          f"or set run_as under [sites.{site.name}.update]")
    return account


def _plan(site: Site, clone: Clone, runner: Account) -> UpdatePlan:
    changes = clone.local_changes()
    if changes:
        raise ConfigError(
            f"site '{site.name}' has local changes in tracked files ({', '.join(changes[:5])}"
            f"{' ...' if len(changes) > 5 else ''}): they would stop the update; commit, "
            f"stash or revert them (git -C {site.install.path} status), then update again")
    upstream = clone.upstream(site.name)
    clone.fetch()
    available = clone.git("rev-parse", "@{u}")
    app, expected = clone.versions_at(available)
    with connect(site.database) as conn:
        in_db = schema_version_in_use(conn)
    return UpdatePlan(
        site=site.name, path=site.install.path, runner=runner.name, upstream=upstream,
        current_commit=clone.head(), available_commit=available,
        current_app=site.install.app_version, available_app=app, schema_in_db=in_db,
        expected_now=site.install.expected_schema_version, expected_after=expected,
        commands=tuple(site.config.update.commands))


def restore_command(site: str, snapshot: str, config_file: Path | None) -> str:
    where = f" --config {config_file}" if config_file else ""
    return f"flowsafe{where} restore {snapshot[:8]} --site {site}"


class _Failed(Exception):
    """Step ``step`` (1-based, as ``UpdatePlan.steps`` counts) failed for ``why``."""

    def __init__(self, step: int, why: str) -> None:
        super().__init__(why)
        self.step = step
        self.why = why


def _apply(config: Config, site: Site, clone: Clone, plan: UpdatePlan, runner: Account,
           log_file: Path, say: SayFn) -> Site:
    """The updater's commands, then flowsafe's checks of their outcome; the site as the
    new code has it."""
    check = len(plan.commands) + 2
    with transcript(log_file, say) as both:
        try:
            run_commands(plan.commands, site.install.path, runner, both)
        except StepFailed as exc:
            raise _Failed(exc.index + 2, f"{exc.why} (output in {log_file})") from None
        try:
            updated = open_site(config, site.name)  # the new code's versions
            problems = checks.code_problems(updated, clone, plan.available_commit,
                                            plan.available_app, plan.expected_after)
            if not problems:
                both(f"login page: {checks.login_page(updated)}")
        except (FlowsafeError, OSError) as exc:
            problems = [str(exc)]
        if problems:
            raise _Failed(check, "; ".join(problems))
    return updated


def _update(config: Config, site_name: str | None, options: UpdateOptions,
            confirm: Callable[[UpdatePlan], bool], say: SayFn,
            progress: ProgressFn) -> UpdateResult:
    with locked_site(config, site_name, "update") as site, \
            runs.recording(config.state_dir, site.name, "update") as entry:
        entry.skip = True  # refusals and dry runs are not runs: recorded from step 1 on
        clone = Clone.open(site.install.path, site.name)
        runner = _runner(site, clone)
        plan = _plan(site, clone, runner)
        entry.reason = f"{plan.current_app} -> {plan.available_app}"
        if options.dry_run or plan.up_to_date or not confirm(plan):
            return UpdateResult(plan, "dry-run" if options.dry_run else
                                "up-to-date" if plan.up_to_date else "cancelled")
        entry.skip = False
        started = time.monotonic()
        steps = plan.steps()

        def failed(number: int, why: str, pre: str | None) -> UpdateFailed:
            command = restore_command(site.name, pre, options.config_file) if pre else ""
            back = f"put the site back with: {command}" if pre else "nothing was changed"
            return UpdateFailed(f"update of site '{site.name}' failed at step {number} "
                                f"({steps[number - 1]}): {why}", site.name, pre, back)

        try:
            pre = backup_site(config, site, "pre-update", progress).snapshot_id
        except (FlowsafeError, OSError) as exc:
            raise failed(1, str(exc), None) from None
        entry.snapshot = pre
        log_file = (config.state_dir / "logs" /
                    f"update-{site.name}-{datetime.now():%Y%m%d-%H%M%S}.log")
        try:
            updated = _apply(config, site, clone, plan, runner, log_file, say)
        except _Failed as exc:
            raise failed(exc.step, exc.why, pre) from None
        except (FlowsafeError, OSError) as exc:  # e.g. the transcript cannot be written
            raise failed(2, str(exc), pre) from None
        try:
            post = backup_site(config, updated, "post-update", progress).snapshot_id
        except (FlowsafeError, OSError) as exc:
            raise UpdateFailed(
                f"site '{site.name}' was updated and checked, but the post-update backup "
                f"failed: {exc}", site.name, None,
                f"take it with: flowsafe backup --reason post-update --site {site.name}"
            ) from None
        entry.snapshot = post
        return UpdateResult(plan, "updated", pre, post, log_file, time.monotonic() - started)


def _roll_back(config: Config, failed: UpdateFailed, options: UpdateOptions,
               progress: ProgressFn) -> UpdateFailed:
    """Restore the pre-update snapshot (files and database) after a failed update."""
    assert failed.pre_update is not None
    try:
        result = run_restore(config, failed.site, RestoreOptions(failed.pre_update[:8]),
                             lambda plan: True, progress)
    except FlowsafeError as exc:
        command = restore_command(failed.site, failed.pre_update, options.config_file)
        return UpdateFailed(failed.failure, failed.site, failed.pre_update,
                            f"the rollback failed too ({exc}); put the site back with: "
                            f"{command}")
    kept = ", ".join(str(x) for x in (result.rollback_database, result.rollback_folder) if x)
    return UpdateFailed(failed.failure, failed.site, failed.pre_update,
                        f"rolled back: restored the pre-update snapshot "
                        f"{failed.pre_update[:8]} (files and database); the failed state is "
                        f"kept for `flowsafe undo` ({kept})")


def run_update(config: Config, site_name: str | None, options: UpdateOptions, *,
               confirm: Callable[[UpdatePlan], bool], say: SayFn,
               progress: ProgressFn) -> UpdateResult:
    """Update one site safely; ``UpdateFailed`` (after the rollback, if asked) on failure."""
    try:
        return _update(config, site_name, options, confirm, say, progress)
    except UpdateFailed as failed:
        if not options.rollback or failed.pre_update is None:
            raise
        raise _roll_back(config, failed, options, progress) from None
