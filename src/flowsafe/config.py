"""flowsafe's TOML configuration: one schema (pydantic) that validates, renders and documents it.

Errors name the key path (``At 'sites.itflow.path': ...``) and are all reported in
one message. Unknown keys are errors. The file holds repository credentials, so
flowsafe writes it with mode 0600.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shlex
import tomllib
from pathlib import Path
from typing import Annotated, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    field_validator,
)

from flowsafe.errors import ConfigError
from flowsafe.itflow.site import DEFAULT_EXCLUDES
from flowsafe.secret import write_private

log = logging.getLogger(__name__)

DEFAULT_CONFIG = Path("/etc/flowsafe/flowsafe.toml")
DEFAULT_REPOSITORY = "/var/backups/flowsafe"
DEFAULT_STATE_DIR = Path("/var/lib/flowsafe")
CONFIG_ENV = "FLOWSAFE_CONFIG"
NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"
NotifyEvent = Literal["failure", "stale", "drill-failure", "success"]
DEFAULT_NOTIFY_ON: tuple[NotifyEvent, ...] = ("failure", "stale", "drill-failure")


def _apprise_url(value: str) -> str:
    """An apprise URL that apprise can use (the URL is never echoed: it may hold a password)."""
    import apprise  # only configs with [notify] urls pay for the import

    if apprise.Apprise.instantiate(value, suppress_exceptions=True) is None:
        scheme = value.split("://", 1)[0] if "://" in value else "(none)"
        raise ValueError(
            f"not an apprise URL that apprise can use (scheme {scheme!r}): check the scheme "
            "and the parts it needs, see apprise's list of services"
        )
    return value


def _http_url(value: str) -> str:
    if not re.match(r"^https?://[^/\s]+", value):
        raise ValueError("must be an http:// or https:// URL (e.g. https://hc-ping.com/<uuid>)")
    return value.rstrip("/")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DatabaseSettings(_Strict):
    """Overrides of the database settings read from config.php."""

    host: str | None = None
    port: Annotated[int, Field(ge=1, le=65535)] | None = None
    socket: str | None = None
    user: str | None = None
    password_file: Path | None = None
    database: str | None = None


class Hooks(_Strict):
    """Shell lines run around each backup of a site (by /bin/sh, in a process group of
    their own, killed with it at the timeout); empty = none."""

    before_backup: str = ""
    after_backup: str = ""
    on_error: str = ""
    timeout_seconds: Annotated[float, Field(gt=0)] = 600


DEFAULT_UPDATE_COMMANDS = (
    "php scripts/update_cli.php --update",
    "php scripts/update_cli.php --update_db",
)


class UpdateSettings(_Strict):
    """How ``flowsafe update`` updates ITFlow: commands run one after another in the site's
    folder (split like a shell line, but run without a shell), as ``run_as`` (empty: the
    owner of the site's files)."""

    commands: Annotated[list[str], Field(min_length=1)] = Field(
        default_factory=lambda: list(DEFAULT_UPDATE_COMMANDS))
    run_as: str = ""

    @field_validator("commands")
    @classmethod
    def _command_lines(cls, value: list[str]) -> list[str]:
        for line in value:
            try:
                if not shlex.split(line):
                    raise ValueError("an empty command")
            except ValueError as exc:
                raise ValueError(f"{line!r} is not a command line ({exc})") from None
        return value


class SiteConfig(_Strict):
    """One ITFlow install."""

    path: Path
    repository: str = "default"
    exclude: list[str] = Field(default_factory=lambda: list(DEFAULT_EXCLUDES))
    signing_key_file: Path | None = None
    database: DatabaseSettings = Field(default_factory=DatabaseSettings)
    admin: DatabaseSettings | None = None
    hooks: Hooks = Field(default_factory=Hooks)
    update: UpdateSettings = Field(default_factory=UpdateSettings)
    ping_url: Annotated[str, AfterValidator(_http_url)] | None = None
    copy_to: list[str] = Field(default_factory=list)
    import_itflow_archives: bool = False  # each backup imports ITFlow's new own archives

    @field_validator("path")
    @classmethod
    def _absolute(cls, value: Path) -> Path:
        if not value.is_absolute():
            raise ValueError("must be an absolute path")
        return value


class RepositoryConfig(_Strict):
    """A restic repository: its URL, password file and backend credentials."""

    url: str
    password_file: Path
    environment: dict[str, str] = Field(default_factory=dict)


class Retention(_Strict):
    """GFS retention applied per site by ``flowsafe prune`` (0 = rule not used)."""

    keep_last: Annotated[int, Field(ge=0)] = 3
    keep_daily: Annotated[int, Field(ge=0)] = 7
    keep_weekly: Annotated[int, Field(ge=0)] = 4
    keep_monthly: Annotated[int, Field(ge=0)] = 12
    keep_yearly: Annotated[int, Field(ge=0)] = 3
    keep_safety_days: Annotated[int, Field(ge=0)] = 7

    def policy(self) -> dict[str, int]:
        return {
            "last": self.keep_last,
            "daily": self.keep_daily,
            "weekly": self.keep_weekly,
            "monthly": self.keep_monthly,
            "yearly": self.keep_yearly,
        }


class Monitoring(_Strict):
    """Limits that make ``flowsafe status`` exit 1."""

    max_backup_age_hours: Annotated[float, Field(gt=0)] = 26.0
    max_drill_age_days: Annotated[float, Field(gt=0)] = 8.0
    textfile: Path | None = None


class Notify(_Strict):
    """Where notifications go (apprise URLs) and on which events."""

    urls: list[Annotated[str, AfterValidator(_apprise_url)]] = Field(default_factory=list)
    on: list[NotifyEvent] = Field(default_factory=lambda: list(DEFAULT_NOTIFY_ON))


class Drill(_Strict):
    """How ``flowsafe drill`` runs."""

    read_data_subset: Annotated[str, Field(pattern=r"^(\d+(\.\d+)?%|\d+/\d+)$")] = "5%"
    php_port: Annotated[int, Field(ge=0, le=65535)] = 0


def _clone_url(value: str) -> str:
    if value and not re.fullmatch(r"(https?://|ssh://|git@|file://|/)[A-Za-z0-9@:/._~%+-]+",
                                  value):
        raise ValueError("must be a git URL a new server can clone (https://..., ssh://..., "
                         "git@host:path or an absolute path), without spaces or quotes")
    return value


def _printable(value: str) -> str:
    if any(not (c.isprintable() or c == "\n") for c in value):
        raise ValueError("must be plain printable text (lines separated by newlines)")
    return value


class SheetSettings(_Strict):
    """What ``flowsafe key sheet`` prints besides the secrets: where a new server clones
    flowsafe from (empty: the clone ``make install`` ran from, when it recorded one) and an
    MSP's own instructions (printed as written, e.g. who to call, where the VM templates are)."""

    source: Annotated[str, AfterValidator(_clone_url)] = ""
    instructions: Annotated[str, AfterValidator(_printable), Field(max_length=2000)] = ""


class Config(_Strict):
    """The whole file."""

    _path: Path | None = PrivateAttr(default=None)
    state_dir: Path = DEFAULT_STATE_DIR
    repositories: dict[str, RepositoryConfig] = Field(default_factory=dict)
    sites: dict[str, SiteConfig] = Field(default_factory=dict)
    retention: Retention = Field(default_factory=Retention)
    monitoring: Monitoring = Field(default_factory=Monitoring)
    drill: Drill = Field(default_factory=Drill)
    notify: Notify = Field(default_factory=Notify)
    sheet: SheetSettings = Field(default_factory=SheetSettings)

    @property
    def path(self) -> Path:
        """The file this config was read from (or will be written to)."""
        return self._path or DEFAULT_CONFIG

    def at(self, path: Path) -> Config:
        """This config, remembering that it lives at ``path``."""
        copy = self.model_copy()
        copy._path = path
        return copy

    def signing_key_file(self, name: str) -> Path:
        """Where site ``name``'s snapshot signing key lives: as configured, else beside
        the config file."""
        site = self.sites[name]
        return site.signing_key_file or self.path.parent / f"{name}.signing-key"

    @field_validator("sites", "repositories")
    @classmethod
    def _names(cls, value: dict[str, object]) -> dict[str, object]:
        for name in value:
            if not re.match(NAME_PATTERN, name):
                raise ValueError(f"name {name!r} must be letters, digits, '.', '_' or '-'")
        return value


def config_path(option: Path | None) -> Path:
    """``--config``, else ``$FLOWSAFE_CONFIG``, else /etc/flowsafe/flowsafe.toml."""
    if option is not None:
        return option
    env = os.environ.get(CONFIG_ENV)
    return Path(env) if env else DEFAULT_CONFIG


def _format_errors(path: Path, exc: ValidationError) -> str:
    parts = []
    for error in exc.errors():
        where = ".".join(str(p) for p in error["loc"])
        message = error["msg"]
        if error["type"] == "extra_forbidden":
            message = "unknown key (check the spelling; see the README's configuration section)"
        parts.append(f"At '{where}': {message}")
    return f"{path}: " + "; ".join(parts)


def parse_config(text: str, path: Path) -> Config:
    """Validate TOML text; every problem is reported in one ConfigError."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}; fix the file") from None
    drill = data.get("drill")
    if isinstance(drill, dict) and drill.pop("mariadb_port", None) is not None:
        log.info("%s: drill.mariadb_port is no longer used (the drill's server has no TCP "
                 "port); it is dropped when the config is next written", path)
    try:
        config = Config.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_format_errors(path, exc)) from None
    config = config.at(path)
    for name, site in config.sites.items():
        if site.repository not in config.repositories:
            raise ConfigError(
                f"{path}: At 'sites.{name}.repository': no repository named "
                f"'{site.repository}' in [repositories]"
            )
        for index, target in enumerate(site.copy_to):
            if target not in config.repositories or target == site.repository:
                raise ConfigError(
                    f"{path}: At 'sites.{name}.copy_to.{index}': '{target}' is "
                    + ("the site's own repository" if target == site.repository else
                       "not a repository in [repositories]")
                    + ": name another [repositories.NAME] entry"
                )
    return config


def load_config(path: Path) -> Config:
    """Read and validate the config file; a missing file says to run ``flowsafe init``."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(
            f"no flowsafe config at {path}: run `flowsafe init --site PATH` first, "
            f"or pass --config / set {CONFIG_ENV}"
        ) from None
    except OSError as exc:
        raise ConfigError(f"cannot read the config {path}: {exc.strerror}") from None
    return parse_config(text, path)


def _toml(value: object) -> str:
    """A TOML literal for str, Path, int, float, bool, or a list/dict of them."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, list):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{_toml(k)} = {_toml(v)}" for k, v in value.items()) + " }"
    return json.dumps(str(value))


def _table(header: str, model: BaseModel, comment: str = "") -> list[str]:
    lines = [f"# {comment}"] if comment else []
    lines.append(f"[{header}]")
    for key, value in model.model_dump(exclude_none=True).items():
        if isinstance(value, dict) and key != "environment":
            continue
        lines.append(f"{key} = {_toml(value)}")
    return [*lines, ""]


def render_config(config: Config) -> str:
    """The config as commented TOML; ``parse_config(render_config(c)) == c``."""
    lines = [
        "# flowsafe configuration (mode 0600: it names repository credentials).",
        "# Reference: see the README, section 'Configuration'.",
        f"state_dir = {_toml(config.state_dir)}",
        "",
    ]
    for name, repo in config.repositories.items():
        lines += _table(f"repositories.{_toml(name)}", repo,
                        "A restic repository; environment holds backend credentials (S3, B2).")
    for name, site in config.sites.items():
        lines += _table(f"sites.{_toml(name)}", site, "An ITFlow install.")
        for key, model, comment in (
            ("database", site.database, "Overrides of the database settings in config.php."),
            ("hooks", site.hooks, "Shell lines run around each backup (see the README)."),
            ("update", site.update, "How `flowsafe update` updates this site."),
            ("admin", site.admin,
             "The account restores and drills create databases and accounts with."),
        ):
            if model is not None and (key == "admin" or model.model_dump(exclude_defaults=True)):
                lines += _table(f"sites.{_toml(name)}.{key}", model, comment)
    lines += _table("retention", config.retention, "GFS retention for `flowsafe prune`.")
    lines += _table("monitoring", config.monitoring, "Limits for `flowsafe status`.")
    lines += _table("drill", config.drill,
                    "flowsafe drill: share of repository data read per drill; ports (0 = any).")
    if config.notify != Notify():
        lines += _table("notify", config.notify, "Notifications: apprise URLs and when to send.")
    if config.sheet != SheetSettings():
        lines += _table("sheet", config.sheet, "What `flowsafe key sheet` prints for a new server.")
    return "\n".join(lines)


def save_config(config: Config, path: Path) -> None:
    """Write the config with mode 0600 (checked by parsing it back first)."""
    text = render_config(config)
    parse_config(text, path)
    write_private(path, text)


def select_site(config: Config, name: str | None) -> tuple[str, SiteConfig]:
    """The site named ``name``; without a name, the only site (else a clear error)."""
    if not config.sites:
        raise ConfigError("no site in the config: run `flowsafe init --site PATH`")
    if name is None:
        if len(config.sites) == 1:
            return next(iter(config.sites.items()))
        raise ConfigError(f"several sites configured; pass --site ({', '.join(config.sites)})")
    if name not in config.sites:
        known = ", ".join(config.sites)
        raise ConfigError(f"no site named '{name}' in the config (known: {known})")
    return name, config.sites[name]
