"""Config: parsing, key-path errors, rendering round trip, site selection."""

from __future__ import annotations

from pathlib import Path

import pytest

from flowsafe.config import (
    DEFAULT_UPDATE_COMMANDS,
    Config,
    DatabaseSettings,
    Hooks,
    RepositoryConfig,
    SiteConfig,
    UpdateSettings,
    config_path,
    load_config,
    parse_config,
    render_config,
    save_config,
    select_site,
)
from flowsafe.errors import ConfigError

GOOD = """
state_dir = "/tmp/state"
[repositories.default]
url = "/tmp/repo"
password_file = "/tmp/pw"
[sites.itflow]
path = "/var/www/itflow"
"""


def test_minimal_config_gets_defaults() -> None:
    config = parse_config(GOOD, Path("x.toml"))
    site = config.sites["itflow"]
    assert site.exclude == ["uploads/tmp", "uploads/backups"]
    assert site.repository == "default"
    assert config.monitoring.max_backup_age_hours == 26
    assert config.retention.policy()["daily"] == 7


def test_all_errors_reported_with_key_paths() -> None:
    text = GOOD.replace('path = "/var/www/itflow"', 'path = "relative"\ncolour = "blue"')
    text += "\n[retention]\nkeep_daily = -1\n"
    with pytest.raises(ConfigError) as info:
        parse_config(text, Path("x.toml"))
    message = str(info.value)
    assert "At 'sites.itflow.path': Value error, must be an absolute path" in message
    assert "At 'sites.itflow.colour': unknown key" in message
    assert "At 'retention.keep_daily'" in message


def test_toml_syntax_error_names_file() -> None:
    with pytest.raises(ConfigError, match=r"x.toml: not valid TOML.*line 2"):
        parse_config("a = 1\nb = = 2\n", Path("x.toml"))


def test_site_must_name_a_known_repository() -> None:
    text = GOOD.replace('path = "/var/www/itflow"', 'path = "/x"\nrepository = "offsite"')
    with pytest.raises(ConfigError, match="no repository named 'offsite'"):
        parse_config(text, Path("x.toml"))


def test_missing_file_says_run_init(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="run `flowsafe init"):
        load_config(tmp_path / "none.toml")


def test_render_round_trip_and_mode(tmp_path: Path) -> None:
    config = Config(
        state_dir=tmp_path / "state",
        repositories={
            "default": RepositoryConfig(
                url="s3:http://127.0.0.1:9000/b",
                password_file=tmp_path / "pw",
                environment={"AWS_ACCESS_KEY_ID": 'k"ey\\', "AWS_SECRET_ACCESS_KEY": "s"},
            )
        },
        sites={
            "a.example": SiteConfig(
                path=Path("/var/www/a"),
                exclude=["uploads/tmp"],
                database=DatabaseSettings(user="root", socket="/run/x.sock"),
                hooks=Hooks(before_backup="/usr/local/bin/snapshot-vm 'a b' \"c\"",
                            timeout_seconds=30),
                update=UpdateSettings(run_as="www-data"),
            ),
            "plain": SiteConfig(path=Path("/var/www/plain")),
        },
    )
    path = tmp_path / "etc" / "flowsafe.toml"
    save_config(config, path)
    assert path.stat().st_mode & 0o777 == 0o600
    assert load_config(path) == config.at(path)  # init rewrites it: hooks and update survive
    text = render_config(config)
    assert '[sites."a.example".database]' in text and '[sites."a.example".hooks]' in text
    assert '[sites."a.example".update]' in text and '[sites."plain".hooks]' not in text


def test_hooks_and_update_settings() -> None:
    site = parse_config(GOOD, Path("x.toml")).sites["itflow"]
    assert site.update.commands == list(DEFAULT_UPDATE_COMMANDS) == [
        "php scripts/update_cli.php --update", "php scripts/update_cli.php --update_db"]
    assert site.update.run_as == "" and site.hooks.timeout_seconds == 600
    assert site.hooks.before_backup == site.hooks.after_backup == site.hooks.on_error == ""
    bad = GOOD + ('[sites.itflow.hooks]\ntimeout_seconds = 0\nbefore = "x"\n'
                  '[sites.itflow.update]\ncommands = ["php \'unclosed"]\n')
    with pytest.raises(ConfigError) as info:
        parse_config(bad, Path("x.toml"))
    message = str(info.value)
    assert "At 'sites.itflow.hooks.timeout_seconds': Input should be greater than 0" in message
    assert "At 'sites.itflow.hooks.before': unknown key" in message
    assert "At 'sites.itflow.update.commands': Value error, \"php 'unclosed\" is not a " \
        "command line (No closing quotation)" in message
    with pytest.raises(ConfigError, match=r"update.commands': List should have at least 1"):
        parse_config(GOOD + "[sites.itflow.update]\ncommands = []\n", Path("x.toml"))


def test_select_site() -> None:
    config = parse_config(GOOD, Path("x.toml"))
    assert select_site(config, None)[0] == "itflow"
    with pytest.raises(ConfigError, match=r"no site named 'other' .*known: itflow"):
        select_site(config, "other")
    two = parse_config(GOOD + '[sites.b]\npath = "/b"\n', Path("x.toml"))
    with pytest.raises(ConfigError, match=r"several sites configured; pass --site"):
        select_site(two, None)


def test_config_path_precedence(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FLOWSAFE_CONFIG", "/env/f.toml")
    assert config_path(None) == Path("/env/f.toml")
    assert config_path(Path("/opt/x.toml")) == Path("/opt/x.toml")
    monkeypatch.delenv("FLOWSAFE_CONFIG")
    assert config_path(None) == Path("/etc/flowsafe/flowsafe.toml")
