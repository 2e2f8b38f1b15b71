"""The docs cannot drift: every command and every config key is in the README."""

from __future__ import annotations

import re
import typing
from pathlib import Path

import typer
from pydantic import BaseModel

from flowsafe.cli import app
from flowsafe.config import Config, DatabaseSettings, RepositoryConfig, SiteConfig
from flowsafe.keys.sheet import STEPS

README = (Path(__file__).parent.parent / "README.md").read_text()


def _commands(typer_app: typer.Typer, prefix: str = "") -> list[str]:
    names = [f"{prefix}{c.name or (c.callback.__name__ if c.callback else '')}"
             for c in typer_app.registered_commands]
    for group in typer_app.registered_groups:
        assert group.typer_instance is not None
        names += _commands(group.typer_instance, f"{prefix}{group.name} ")
    return names


def test_every_command_is_in_the_readme() -> None:
    commands = _commands(app)
    assert len(commands) >= 15
    for command in commands:
        assert f"`flowsafe {command.replace('_', '-')}" in README, command


def _keys(model: type[BaseModel], prefix: str = "") -> list[str]:
    keys = []
    for name, field in model.model_fields.items():
        annotation = field.annotation
        models = [a for a in typing.get_args(annotation) if isinstance(a, type)
                  and issubclass(a, BaseModel)]  # an optional table: ``X | None``
        annotation = models[0] if models else annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            keys += _keys(annotation, f"{prefix}{name}.")
        else:
            keys.append(f"{prefix}{name}")
    return keys


def test_every_config_key_is_in_the_readme() -> None:
    section = README.split("## Configuration", 1)[1]
    for key in _keys(Config):
        leaf = key.rsplit(".", 1)[-1]
        if leaf in ("repositories", "sites"):
            continue
        assert re.search(rf"^#?\s*{leaf} =", section, re.M), key
    for model in (RepositoryConfig, SiteConfig, DatabaseSettings):
        for key in _keys(model):
            assert re.search(rf"^#?\s*{key.rsplit('.', 1)[-1]} =", section, re.M), key


def test_readme_repeats_the_recovery_sheet_steps_word_for_word() -> None:
    section = README.split("## New server from the recovery sheet", 1)[1].split("\n## ", 1)[0]
    flat = " ".join(section.split())
    for step in STEPS:
        assert step in flat, step
