"""``flowsafe init``: read an ITFlow install, attach to or create the restic
repository, and write the config (mode 0600). Never re-initialises a repository."""

from __future__ import annotations

import os
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from flowsafe import signature
from flowsafe.config import (
    DEFAULT_REPOSITORY,
    DEFAULT_STATE_DIR,
    Config,
    DatabaseSettings,
    RepositoryConfig,
    SiteConfig,
    load_config,
    save_config,
)
from flowsafe.errors import ConfigError
from flowsafe.itflow.site import read_site, schema_version_in_use
from flowsafe.mariadb import accounts
from flowsafe.mariadb.connection import DbTarget, connect
from flowsafe.offsite.placement import offsite_warning
from flowsafe.restic import WrongPasswordError
from flowsafe.secret import write_private
from flowsafe.sites import database_target, repository

BACKEND_ENVIRONMENT = {
    "s3": ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_DEFAULT_REGION", "AWS_SESSION_TOKEN"),
    "b2": ("B2_ACCOUNT_ID", "B2_ACCOUNT_KEY"),
    "azure": ("AZURE_ACCOUNT_NAME", "AZURE_ACCOUNT_KEY", "AZURE_ACCOUNT_SAS"),
    "gs": ("GOOGLE_PROJECT_ID", "GOOGLE_APPLICATION_CREDENTIALS"),
    "swift": ("OS_AUTH_URL", "OS_USERNAME", "OS_PASSWORD", "OS_TENANT_NAME", "OS_REGION_NAME"),
}


def backend_environment(url: str, environ: Mapping[str, str]) -> dict[str, str]:
    """The backend credentials restic reads for this URL's scheme, taken from ``environ``."""
    scheme = url.split(":", 1)[0] if ":" in url else ""
    return {key: environ[key] for key in BACKEND_ENVIRONMENT.get(scheme, ()) if key in environ}


@dataclass(frozen=True)
class InitOptions:
    """What ``flowsafe init`` was asked to do."""

    site_path: Path | None
    name: str | None = None
    repo_url: str | None = None
    repo_password_file: Path | None = None
    state_dir: Path | None = None
    database: DatabaseSettings = field(default_factory=DatabaseSettings)


@dataclass(frozen=True)
class InitResult:
    """What init did, for the one-time message about the repository password."""

    site: str | None
    config_path: Path
    repository_url: str
    password_file: Path
    password_generated: bool
    repository_created: bool
    app_version: str | None
    schema_version: str | None
    signing_key_file: Path | None = None
    signing_key_made: bool = False
    admin_note: str | None = None  # who restores and drills create databases as, and why
    offsite_note: str | None = None  # set when every repository of the site is on this machine


def site_name_for(path: Path) -> str:
    """A config-safe name from the install folder (``/var/www/itflow.example.com``)."""
    name = re.sub(r"[^A-Za-z0-9._-]+", "-", path.name).strip("-.") or "itflow"
    return name[:64]


def _default_url(config: Config, existing: SiteConfig | None) -> str:
    """The site's repository, else the only configured one, else /var/backups/flowsafe."""
    if existing is not None:
        return config.repositories[existing.repository].url
    if len(config.repositories) == 1:
        return next(iter(config.repositories.values())).url
    return DEFAULT_REPOSITORY


def _repository_entry(config: Config, url: str, site: str) -> str:
    """The name of the repository entry with this URL, or a fresh name for a new one."""
    for name, repo in config.repositories.items():
        if repo.url == url:
            return name
    return "default" if "default" not in config.repositories else site


@dataclass(frozen=True)
class _Attached:
    config: Config
    repo_name: str
    password_file: Path
    generated: bool
    created: bool


def _attach(config: Config, config_path: Path, url: str, repo_name: str,
            password_option: Path | None, create: bool = True) -> _Attached:
    """Open (or, if ``create``, create) the repository at ``url``; returns the config that
    names it."""
    known = config.repositories.get(repo_name)
    generated = False
    if password_option is not None:
        password_file = password_option.resolve()
        if not password_file.is_file():
            raise ConfigError(
                f"--repo-password-file {password_file} does not exist; give the file that "
                "holds the repository password, or leave the option out to generate one"
            )
    elif known is not None:
        password_file = known.password_file
    else:
        password_file = config_path.parent / f"{repo_name}.password"
        generated = not password_file.exists()
    pending = password_file.with_name(password_file.name + ".new")
    if generated:
        write_private(pending, secrets.token_urlsafe(32) + "\n")
    environment = {**(known.environment if known else {}),
                   **backend_environment(url, os.environ)}
    repo = RepositoryConfig(
        url=url, password_file=pending if generated else password_file, environment=environment,
    )
    config = config.model_copy(update={"repositories": {**config.repositories, repo_name: repo}})
    restic = repository(config, repo_name)
    restic.version()
    created = False
    try:
        try:
            created = not restic.exists()
        except WrongPasswordError:
            if not generated:
                raise
        if created and not create:
            raise ConfigError(f"there is no restic repository at {url}: check the URL (the "
                              "recovery sheet names the off-site copy)")
        if created:
            restic.init()
        elif generated:
            raise ConfigError(
                f"a restic repository already exists at {url}: pass --repo-password-file "
                "with its password to attach to it"
            )
    finally:
        if generated and pending.exists():
            if created:
                os.replace(pending, password_file)
            else:
                pending.unlink()
    repo = repo.model_copy(update={"password_file": password_file})
    config = config.model_copy(update={"repositories": {**config.repositories, repo_name: repo}})
    return _Attached(config, repo_name, password_file, generated, created)


def attach_existing(config_path: Path, url: str, password_file: Path,
                    state_dir: Path | None) -> tuple[Config, str]:
    """The config at ``config_path`` (or a new one) attached to the existing repository at
    ``url``, not saved; returns it and the repository's name in it. Never creates one."""
    config = _base_config(config_path, state_dir)
    repo_name = _repository_entry(config, url, "default")
    return _attach(config, config_path, url, repo_name, password_file, create=False).config, \
        repo_name


def _base_config(config_path: Path, state_dir: Path | None) -> Config:
    config = load_config(config_path) if config_path.exists() else Config(
        state_dir=state_dir or DEFAULT_STATE_DIR
    )
    if state_dir and state_dir != config.state_dir:
        config = config.model_copy(update={"state_dir": state_dir})
    return config


def run_init(config_path: Path, options: InitOptions) -> InitResult:
    """Add (or re-attach) a site and its repository to the config.

    Without a site path, only attach to (or create) the repository: how a new
    server that has no ITFlow yet gets at the backups for ``restore --to-path``.
    """
    config = _base_config(config_path, options.state_dir)
    if options.site_path is None:
        if options.repo_url is None:
            raise ConfigError("pass --site PATH (an ITFlow install), or --repo URL with "
                              "--repo-password-file to attach to a repository only")
        repo_name = _repository_entry(config, options.repo_url, options.name or "default")
        attached = _attach(config, config_path, options.repo_url, repo_name,
                           options.repo_password_file)
        save_config(attached.config, config_path)
        return InitResult(None, config_path, options.repo_url, attached.password_file,
                          attached.generated, attached.created, None, None)
    site_path = options.site_path.resolve()
    install = read_site(site_path)
    name = options.name or site_name_for(site_path)
    existing = config.sites.get(name)
    if existing and existing.path != site_path:
        raise ConfigError(
            f"site '{name}' is already configured for {existing.path}; choose another --name"
        )
    url = options.repo_url or _default_url(config, existing)
    repo_name = _repository_entry(config, url, name)
    given = options.database.model_dump(exclude_none=True)
    site = (existing or SiteConfig(path=site_path)).model_copy(update={
        "path": site_path, "repository": repo_name,
        "database": options.database if given or existing is None else existing.database})
    target = database_target(install.config, site)
    with connect(target) as conn:
        schema = schema_version_in_use(conn)
    site, admin_note = _restore_account(site, target)
    attached = _attach(config, config_path, url, repo_name, options.repo_password_file)
    config = attached.config.model_copy(update={"sites": {**attached.config.sites, name: site}})
    save_config(config, config_path)
    key_file = load_config(config_path).signing_key_file(name)
    _, made = signature.ensure_key(key_file)
    return InitResult(
        site=name,
        config_path=config_path,
        repository_url=url,
        password_file=attached.password_file,
        password_generated=attached.generated,
        repository_created=attached.created,
        app_version=install.app_version,
        schema_version=schema,
        signing_key_file=key_file,
        signing_key_made=made,
        admin_note=admin_note,
        offsite_note=offsite_warning(config, name),
    )


def _restore_account(site: SiteConfig, target: DbTarget) -> tuple[SiteConfig, str | None]:
    """Who restores and drills will create databases and load accounts as. ITFlow's own
    account usually may not; then root over the local socket (Debian's default), recorded
    in ``[sites.NAME.admin]``, or a note saying what is missing."""
    if site.admin is not None or accounts.rights(target).admin:
        return site, None
    root = accounts.root_over_socket(target)
    if root is not None and accounts.rights(root).admin:
        admin = DatabaseSettings(user="root", socket=target.socket)
        return site.model_copy(update={"admin": admin}), (
            f"{target.where()} may not create databases, so restores and drills will use root "
            "over the local socket (recorded under [sites.<name>.admin])")
    return site, str(accounts.missing_privileges(target))
