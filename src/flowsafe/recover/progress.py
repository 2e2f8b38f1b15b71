"""The state of a recover on this machine (``<state_dir>/recover/<site>.json``, 0600,
replaced whole by rename): which snapshot goes where and how far it got, so that a
recover killed at any step is finished by the next run with the same target, and a
run with another target is told exactly what to clean first."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict

from flowsafe.errors import ConfigError
from flowsafe.secret import write_private

# restoring: the database and folder are recover's own (they were absent or empty, or
# --replace-existing said so), and a re-run drops them and starts again; restored: the
# files and database are complete, the later steps (owner, checks, config, backup) are
# each run again until they pass.
Phase = Literal["restoring", "restored", "verified", "configured"]
PHASES: tuple[Phase, ...] = ("restoring", "restored", "verified", "configured")


class RecoverState(BaseModel):
    """One recover in progress."""

    model_config = ConfigDict(frozen=True)

    site: str
    snapshot: str
    to: Path
    database: str
    phase: Phase

    def reached(self, phase: Phase) -> bool:
        return PHASES.index(self.phase) >= PHASES.index(phase)

    def at(self, phase: Phase) -> RecoverState:
        return self.model_copy(update={"phase": phase})


def state_file(state_dir: Path, site: str) -> Path:
    return state_dir / "recover" / f"{site}.json"


def read(state_dir: Path, site: str) -> RecoverState | None:
    """The interrupted recover of ``site``, if there is one."""
    path = state_file(state_dir, site)
    try:
        return RecoverState.model_validate_json(path.read_text())
    except FileNotFoundError:
        return None
    except ValueError:
        raise ConfigError(f"{path} is damaged: remove it, then clean the recover's target "
                          "by hand (its folder and database) and run flowsafe recover again"
                          ) from None


def write(state_dir: Path, state: RecoverState) -> None:
    path = state_file(state_dir, state.site)
    pending = path.with_name(f".{path.name}.new")
    write_private(pending, state.model_dump_json(indent=2) + "\n")
    os.replace(pending, path)


def done(state_dir: Path, site: str) -> None:
    state_file(state_dir, site).unlink(missing_ok=True)


def _cleaning(state_dir: Path, state: RecoverState) -> str:
    return (f"rm -rf {state.to}; mariadb -e 'DROP DATABASE `{state.database}`'; "
            f"rm {state_file(state_dir, state.site)}")


def resumable(state_dir: Path, state: RecoverState, to: Path, database: str) -> None:
    """Refuse to finish an interrupted recover for another target, or one whose restored
    folder is gone, saying what to clean."""
    if state.to != to or state.database != database:
        raise ConfigError(
            f"a recover of site '{state.site}' into {state.to} and database "
            f"'{state.database}' was interrupted ({state.phase}): run the same command again "
            f"to finish it, or clean it first ({_cleaning(state_dir, state)})")
    if state.reached("restored") and not (to / "config.php").is_file():
        raise ConfigError(
            f"the interrupted recover of site '{state.site}' had restored {to}, which is gone "
            f"now: clean what is left ({_cleaning(state_dir, state)}), then recover again")
