"""The backup key that opens (or seals) ITFlow 26.08 archives: a 0600 key file, or
``$config_backup_key`` in the site's ``config.php``."""

from __future__ import annotations

from pathlib import Path

from flowsafe.config import Config, select_site
from flowsafe.errors import ConfigError
from flowsafe.itflow.config_php import ConfigPhp, parse_config_php
from flowsafe.secret import Secret, read_owner_only


def read_backup_key_file(path: Path) -> Secret:
    """The key in ``path``: one line, in a file only its owner can read."""
    text = read_owner_only(path, "backup key file")
    if not text or "\n" in text:
        raise ConfigError(f"backup key file {path} must hold the key on one line (ITFlow shows "
                          "it in Admin > Backup)")
    return Secret(text)


def config_backup_key(php: ConfigPhp) -> Secret:
    """``$config_backup_key`` of an ITFlow install, or a ConfigError saying how to give one."""
    key = php.backup_key
    if not key:
        raise ConfigError(
            f"{php.path} has no $config_backup_key (ITFlow adds it the first time it makes a "
            "backup): pass --backup-key-file FILE, a 0600 file holding the key")
    return key


def backup_key(config: Config | None, site: str | None, key_file: Path | None) -> Secret:
    """The key from ``key_file``, else from the config.php of the configured ``site``."""
    if key_file is not None:
        return read_backup_key_file(key_file)
    if config is None or (site is not None and site not in config.sites) or not config.sites:
        raise ConfigError("no backup key: pass --backup-key-file FILE (a 0600 file holding the "
                          "key), or --site NAME of a site configured here")
    _, chosen = select_site(config, site)
    return config_backup_key(parse_config_php(chosen.path / "config.php"))
