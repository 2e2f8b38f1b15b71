"""``flowsafe recover``: the steps of a new-server restore, in order, and how a re-run
finishes one that was interrupted.

prerequisites -> attach to the existing repository -> choose site and snapshot ->
check the target (folder absent or empty; database absent, empty, or
``--replace-existing``) -> plan -> confirm -> [restoring] the checked restore
elsewhere (database loaded as root over the socket, the application account with a
random password and rights on that database only, files, config.php) -> [restored]
the tree given to the web user -> the login page under PHP as that user, every
credential with the key -> [verified] flowsafe's own config for the site ->
[configured] a ``post-recover`` backup -> done. Each step ends at a ``FLOWSAFE_FAULT``
checkpoint (``recover-attach``, ``db-load``, ``recover-restore``, ``recover-owner``,
``recover-verify``, ``recover-config``, ``recover-backup``). A re-run with the same
target finishes an interrupted recover: before ``restored`` it drops what that
recover made and restores again; from there on it repeats the steps not yet done.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from flowsafe import signature
from flowsafe.backup import ProgressFn, run_backup
from flowsafe.catalog import TrustOptions, read_manifest, resolve, trust_for
from flowsafe.config import Config, DatabaseSettings, load_config, save_config
from flowsafe.errors import ConfigError, VerificationError
from flowsafe.faults import checkpoint
from flowsafe.init import InitOptions, attach_existing, run_init
from flowsafe.itflow import login_check
from flowsafe.itflow.config_php import base_url_value, parse_config_php
from flowsafe.keys.run import KeySource, check_key, load_key
from flowsafe.local_users import Account, chown_tree
from flowsafe.lock import site_lock
from flowsafe.manifest import Manifest
from flowsafe.mariadb import accounts
from flowsafe.mariadb.connection import DbTarget
from flowsafe.recover import choice, prerequisites, progress
from flowsafe.recover.handover import Step, left_to_do
from flowsafe.recover.progress import RecoverState
from flowsafe.restic import Restic, Snapshot
from flowsafe.restore.files import remove_landings
from flowsafe.restore.run import ElsewhereOptions, check_target, run_restore_elsewhere
from flowsafe.secret import write_private
from flowsafe.sites import repository
from flowsafe.swap.tables import drop_database

APP_USER = "itflow"
WEB_USER = "www-data"
REASON = "post-recover"


@dataclass(frozen=True)
class RecoverOptions:
    """What ``flowsafe recover`` was asked to do."""

    repo_url: str
    repo_password_file: Path
    site: str | None = None
    snapshot: str = "latest"
    to: Path = Path("/var/www/itflow")
    database: str = "itflow"
    db_user: str = APP_USER
    socket: str | None = None  # the MariaDB socket (default: the distribution's)
    base_url: str | None = None
    web_user: str | None = None
    key_source: KeySource | None = None
    replace_existing: bool = False
    dry_run: bool = False
    state_dir: Path | None = None
    jobs: int = 2
    trust: TrustOptions = field(default_factory=TrustOptions)


@dataclass(frozen=True)
class RecoverPlan:
    """What a recover will bring back, where, and for whom."""

    site: str
    snapshot_id: str
    snapshot_time: datetime
    app_version: str | None
    schema_version: str | None
    repository: str
    trust: str
    to: Path
    database: str
    app_user: str
    web_user: str
    base_url: str | None  # the new $config_base_url; None: the backup's is kept
    resuming: str | None  # the phase an interrupted recover of this target reached


@dataclass(frozen=True)
class RecoverResult:
    """What the recover did, what it checked, and what is left by hand."""

    plan: RecoverPlan
    done: bool
    login: str = ""
    credentials: str = ""
    backup_snapshot: str | None = None
    config_path: Path | None = None
    left_to_do: list[Step] = field(default_factory=list)


def web_account(name: str | None, manifest: Manifest) -> Account:
    """Who owns the tree and runs PHP: ``--web-user``, else the owner the snapshot
    recorded when that user exists here (and is not root), else www-data."""
    if name is not None:
        found = Account.named(name)
        if found is None or found.uid == 0:
            raise ConfigError(f"--web-user {name}: no such unprivileged user here; name the "
                              "user your web server runs PHP as (Debian: www-data)")
        return found
    recorded = manifest.files.owner
    if recorded and recorded != "root" and (found := Account.named(recorded)) is not None:
        return found
    found = Account.named(WEB_USER)
    if found is None:
        raise ConfigError(f"no {WEB_USER} user here: install the web server first (apt-get "
                          "install nginx php-fpm, or apache2 libapache2-mod-php), or pass "
                          "--web-user")
    return found


def _check_folder(to: Path) -> None:
    if to.is_symlink() or (to.exists() and not to.is_dir()):
        raise ConfigError(f"--to {to} is not a folder: choose a new or empty folder")
    if to.is_dir() and any(to.iterdir()):
        raise ConfigError(f"--to {to} is not empty: choose a new or empty folder (or move "
                          "what is there away first)")


@dataclass(frozen=True)
class _Found:
    config: Config
    restic: Restic
    site: str
    snap: Snapshot
    manifest: Manifest
    state: RecoverState | None
    account: Account
    root: DbTarget  # root over the socket: who does the restore work
    elsewhere: ElsewhereOptions


def _find(config_path: Path, options: RecoverOptions, to: Path) -> tuple[_Found, RecoverPlan]:
    """Everything a recover checks before it may change anything (``--dry-run`` too)."""
    root = prerequisites.check(options.socket)
    config, repo_name = attach_existing(config_path, options.repo_url,
                                        options.repo_password_file, options.state_dir)
    restic = repository(config, repo_name)
    site, snap = choice.choose(restic, options.site, options.snapshot)
    state = progress.read(config.state_dir, site)
    if state is not None:
        progress.resumable(config.state_dir, state, to, options.database)
        snap = resolve(restic, site, state.snapshot)
    elif site in config.sites:
        raise ConfigError(f"site '{site}' is already configured here for "
                          f"{config.sites[site].path} (recovered already?): see `flowsafe "
                          "status`; to restore it again use `flowsafe restore`")
    checked = read_manifest(restic, snap, site, trust_for(config, site, options.trust))
    account = web_account(options.web_user, checked.manifest)
    base_url = base_url_value(options.base_url) if options.base_url else None
    server = DbTarget(database=options.database, socket=options.socket, user=options.db_user)
    elsewhere = ElsewhereOptions(snap.id, to, options.database, server,
                                 replace_existing=options.replace_existing, jobs=options.jobs,
                                 trust=options.trust, base_url=base_url)
    if state is None:
        _check_folder(to)
        check_target(config, elsewhere, root.with_database(options.database))
    itflow = checked.manifest.itflow
    plan = RecoverPlan(site, snap.id, snap.time, itflow.app_version, itflow.schema_version,
                       restic.repo.display_url, checked.trust, to, options.database,
                       options.db_user, account.name, base_url, state.phase if state else None)
    return _Found(config, restic, site, snap, checked.manifest, state, account, root,
                  elsewhere), plan


def _restore(found: _Found, plan: RecoverPlan, root: DbTarget,
             progress_fn: ProgressFn) -> RecoverState:
    state_dir = found.config.state_dir
    if found.state is not None:  # restoring: what the interrupted run made is its own
        shutil.rmtree(plan.to, ignore_errors=True)
        remove_landings(plan.to)
        drop_database(root, plan.database)
        accounts.drop_stale(root)
    state = RecoverState(site=found.site, snapshot=found.snap.id, to=plan.to,
                         database=plan.database, phase="restoring")
    progress.write(state_dir, state)
    run_restore_elsewhere(found.config, found.site, found.elsewhere,
                          lambda _options, _manifest: True, progress_fn)
    checkpoint("recover-restore")
    state = state.at("restored")
    progress.write(state_dir, state)
    return state


def _verify(found: _Found, options: RecoverOptions, plan: RecoverPlan,
            root: DbTarget) -> tuple[str, str]:
    """The login page under PHP as the web user; every credential with the key."""
    stays = (f"the restore stays in {plan.to} and database '{plan.database}'; run the same "
             "flowsafe recover again to finish")
    try:
        login = login_check.check(plan.to, socket=options.socket, account=found.account)
    except login_check.LoginPageError as exc:
        raise VerificationError(f"the recovered site does not answer its login page ({exc}): "
                                f"{stays} once it does") from None
    if options.key_source is None:
        return login, ""
    key = load_key(options.key_source, found.restic, found.site)
    report = check_key(found.site, found.restic, root.with_database(plan.database), key)
    if not report.ok:
        why = ("it is not the key whose fingerprint was escrowed"
               if report.fingerprint_matches is False else
               f"{len(report.failed_ids)} of {report.credentials} credentials do not decrypt")
        raise VerificationError(f"the master key given does not match site '{found.site}' "
                                f"({why}): {stays} with the right key (or without a key "
                                "source to skip this check)")
    return login, f"{report.decrypted} of {report.credentials} credentials decrypt"


def _install_signing_key(config_path: Path, found: _Found, options: RecoverOptions) -> None:
    """The key that signed the snapshot becomes the site's own, so old and new snapshots
    are trusted alike (without one, ``init`` makes a new key)."""
    target = signature.default_key_file(config_path.parent, found.site)
    signed = [t.split(":")[1] for t in found.snap.tags if t.startswith(f"{signature.TAG}:")]
    if target.exists() or not signed:
        return
    for key in signature.keys_in_files(list(options.trust.key_files)):
        if signature.key_id(key) == signed[0]:
            write_private(target, key.hex() + "\n")
            return


def run_recover(config_path: Path, options: RecoverOptions,
                confirm: Callable[[RecoverPlan], bool], progress_fn: ProgressFn
                ) -> RecoverResult:
    """Bring a site back on this (new) server from its repository; see the module doc."""
    to = options.to.absolute()
    found, plan = _find(config_path, options, to)
    if options.dry_run or not confirm(plan):
        return RecoverResult(plan, done=False)
    root = found.root
    state_dir = found.config.state_dir
    login = credentials = ""
    with site_lock(state_dir, found.site, "recover"):
        state = found.state
        if state is None or not state.reached("restored"):
            save_config(found.config, config_path)  # attached: `flowsafe snapshots` works
            checkpoint("recover-attach")
            state = _restore(found, plan, root, progress_fn)
        chown_tree(to, found.account.uid, found.account.gid)
        checkpoint("recover-owner")
        if not state.reached("verified"):
            login, credentials = _verify(found, options, plan, root)
            state = state.at("verified")
            progress.write(state_dir, state)
            checkpoint("recover-verify")
        if not state.reached("configured"):
            _install_signing_key(config_path, found, options)
            run_init(config_path, InitOptions(
                site_path=to, name=found.site, repo_url=options.repo_url,
                repo_password_file=options.repo_password_file, state_dir=options.state_dir,
                database=DatabaseSettings(socket=options.socket)))
            progress.write(state_dir, state.at("configured"))
            checkpoint("recover-config")
    backup = run_backup(load_config(config_path), found.site, REASON, progress_fn)
    checkpoint("recover-backup")
    progress.done(state_dir, found.site)
    host = plan.base_url or parse_config_php(to / "config.php").base_url
    steps = left_to_do(to, host, found.account.name)
    if plan.base_url is None:
        steps.insert(0, Step(f"$config_base_url in {to / 'config.php'} is still "
                             f"'{host}' (the old server's name): if this server has "
                             "another, set it there (or re-run with --base-url)", []))
    return RecoverResult(plan, True, login, credentials, backup.snapshot_id, config_path,
                         steps)
