"""Turns a configured site into what commands work with: its ITFlow install,
its database target (config.php plus overrides) and its restic repository."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from flowsafe.config import Config, DatabaseSettings, SiteConfig, select_site
from flowsafe.itflow.config_php import ConfigPhp
from flowsafe.itflow.site import ItflowSite, read_site
from flowsafe.mariadb.accounts import choose_admin
from flowsafe.mariadb.connection import DbTarget
from flowsafe.restic import Repository, Restic
from flowsafe.secret import Secret

SNAPSHOT_TAG = "flowsafe"


@dataclass(frozen=True)
class Site:
    """A site ready to work on."""

    name: str
    config: SiteConfig
    install: ItflowSite
    database: DbTarget
    restic: Restic
    state_dir: Path
    signing_key_file: Path
    configured_admin: DbTarget | None = None

    def admin(self) -> DbTarget:
        """The account that creates scratch databases and load accounts (mariadb/accounts)."""
        return choose_admin(self.database, self.configured_admin)

    @property
    def tags(self) -> list[str]:
        """The tags every snapshot of this site carries (the filter for listing)."""
        return site_tags(self.name)

    @property
    def staging(self) -> Path:
        return self.state_dir / "staging" / self.name


def site_tags(name: str) -> list[str]:
    return [SNAPSHOT_TAG, f"site:{name}"]


def database_target(php: ConfigPhp, site: SiteConfig,
                    over: DatabaseSettings | None = None) -> DbTarget:
    """config.php's database settings, overridden by the site's [database] table (or by
    ``over``, e.g. its [admin] table)."""
    over = site.database if over is None else over
    if over.password_file is not None:
        password = Secret.from_file(over.password_file)
    elif over.user is not None and over.user != php.dbusername:
        password = Secret("")
    else:
        password = php.dbpassword
    return DbTarget(
        database=over.database or php.database,
        host=over.host or php.dbhost,
        port=over.port or 3306,
        socket=over.socket or site.database.socket,
        user=over.user or php.dbusername,
        password=password,
    )


def repository(config: Config, name: str) -> Restic:
    """The restic wrapper for a named repository of the config."""
    repo = config.repositories[name]
    return Restic(
        Repository(
            url=repo.url,
            password_file=repo.password_file,
            environment={key: Secret(value) for key, value in repo.environment.items()},
            cache_dir=config.state_dir / "cache",
        )
    )


def open_site(config: Config, name: str | None) -> Site:
    """Resolve ``--site`` (or the only site) into a ``Site``; reads config.php."""
    site_name, site = select_site(config, name)
    install = read_site(site.path)
    return Site(
        name=site_name,
        config=site,
        install=install,
        database=database_target(install.config, site),
        restic=repository(config, site.repository),
        state_dir=config.state_dir,
        signing_key_file=config.signing_key_file(site_name),
        configured_admin=database_target(install.config, site, site.admin)
        if site.admin is not None else None,
    )
