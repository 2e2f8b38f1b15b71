"""Several sites in one run: the one loop that backup, prune, drill and status share.

Every site of the config (or the one ``--site`` names) runs one after another; a
site's failure is caught, becomes its ``SiteOutcome`` and the next site runs. The
run's exit code: 0 when every site succeeded; with one site, that site's own code;
with several, 3 when every failure was a verification problem, else 1.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from flowsafe.config import Config
from flowsafe.errors import EXIT_FAILED, EXIT_OK, EXIT_VERIFY, ConfigError, FlowsafeError

log = logging.getLogger(__name__)

T = TypeVar("T")


@dataclass(frozen=True)
class Finding:
    """What a step's result says about its site: a problem (None: ok), the snapshot it
    made or checked, and the exit code the problem stands for."""

    problem: str | None = None
    snapshot_id: str | None = None
    exit_code: int = EXIT_FAILED


@dataclass(frozen=True)
class SiteOutcome:
    """How one command went on one site."""

    site: str
    command: str
    ok: bool
    error: str | None
    snapshot_id: str | None
    duration: float
    exit_code: int


@dataclass
class FleetRun(Generic[T]):
    """Every site's outcome, and the results of the sites whose step returned one."""

    outcomes: list[SiteOutcome] = field(default_factory=list)
    results: list[T] = field(default_factory=list)

    @property
    def failed(self) -> list[SiteOutcome]:
        return [o for o in self.outcomes if not o.ok]

    @property
    def exit_code(self) -> int:
        codes = {o.exit_code for o in self.failed}
        if not codes:
            return EXIT_OK
        if len(self.outcomes) == 1:
            return codes.pop()
        return EXIT_VERIFY if codes == {EXIT_VERIFY} else EXIT_FAILED


def site_names(config: Config, site: str | None) -> list[str]:
    """The site ``--site`` names, else every configured site."""
    if site is not None:
        return [site]
    if not config.sites:
        raise ConfigError("no site in the config: run `flowsafe init --site PATH` (or pass "
                          "--site NAME for a site whose backups are in the repository)")
    return list(config.sites)


def _ok(result: object) -> Finding:
    return Finding()


def each_site(
    config: Config,
    site: str | None,
    command: str,
    step: Callable[[str], T],
    *,
    judge: Callable[[T], Finding] = _ok,
    on_done: Callable[[SiteOutcome, T | None], None] | None = None,
) -> FleetRun[T]:
    """Run ``step(site name)`` for each site in turn; a failure does not stop the rest.

    ``judge`` turns a returned result into a problem (a failed drill check, a stale
    backup); ``on_done`` sees each site's outcome as soon as it is known.
    """
    run: FleetRun[T] = FleetRun()
    for name in site_names(config, site):
        started = time.monotonic()
        result: T | None = None
        try:
            result = step(name)
            finding = judge(result)
        except FlowsafeError as exc:
            finding = Finding(str(exc), exit_code=exc.exit_code)
        except OSError as exc:
            finding = Finding(str(exc))
        except Exception as exc:
            log.exception("flowsafe %s of site '%s' failed unexpectedly", command, name)
            finding = Finding(f"unexpected {type(exc).__name__}: {exc}")
        outcome = SiteOutcome(site=name, command=command, ok=finding.problem is None,
                              error=finding.problem, snapshot_id=finding.snapshot_id,
                              duration=time.monotonic() - started,
                              exit_code=EXIT_OK if finding.problem is None
                              else finding.exit_code)
        run.outcomes.append(outcome)
        if result is not None:
            run.results.append(result)
        if on_done is not None:
            on_done(outcome, result)
    return run
