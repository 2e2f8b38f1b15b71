"""What happens when a command starts or finishes for a site: the two seams every run
calls (``before_run``, ``after_run``), and ``after_status`` for ``flowsafe status``.

After a backup: copy to the site's ``copy_to`` repositories, record the run (and each
copy) in the repository, notify through apprise per ``[notify] on``, ping the site's
``ping_url``, rewrite the ``[monitoring] textfile``. Each step is guarded on its own: a
step that fails is logged (and, for a delivery, kept for ``status``); none of them ever
raises into the command or changes its exit code.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

from flowsafe import runs
from flowsafe.config import Config
from flowsafe.notify import deliver, metrics, ping, records
from flowsafe.notify.outcome import Outcome
from flowsafe.offsite.copy import CopyOutcome, copy_site
from flowsafe.sites import repository

if TYPE_CHECKING:
    from flowsafe.status import SiteStatus

log = logging.getLogger(__name__)

RECORDED = ("backup", "copy")  # commands whose runs are recorded in the repository
STALE_REPEAT = timedelta(hours=24)  # a stale site is notified again after this long
T = TypeVar("T")


def _guard(what: str, step: Callable[[], T]) -> T | None:
    """Run one step; a failure is logged, never raised."""
    try:
        return step()
    except Exception as exc:
        log.warning("%s failed: %s", what, exc)
        return None


def _delivery_failed(config: Config, site: str, event: str, line: str) -> None:
    runs.record(config.state_dir, site, records.NOTIFY_FAILURE, ok=False, reason=event,
                error=line)


def copy_outcome(copy: CopyOutcome) -> Outcome:
    """A copy as an outcome to tell about."""
    detail = (f"{copy.copied} snapshots copied, {copy.already_there} already there"
              + (", repository created" if copy.created else ""))
    return Outcome(copy.site, "copy", copy.ok, copy.error, duration=copy.seconds,
                   detail=detail, to=copy.repository)


def _stale_again(config: Config, outcome: Outcome) -> bool:
    """A stale site is notified once, then again each day it stays stale."""
    last = runs.read(config.state_dir, outcome.site).get("notify-stale")
    if last and datetime.now(UTC) - datetime.fromisoformat(last["time"]) < STALE_REPEAT:
        return False
    runs.record(config.state_dir, outcome.site, "notify-stale", ok=True,
                reason=outcome.error or "")
    return True


def notify(config: Config, outcome: Outcome) -> list[str]:
    """Send the outcome to every ``[notify] urls`` when its event is in ``on``; returns
    the lines of deliveries that failed (each kept for ``status``)."""
    wanted = config.notify.urls and outcome.event in config.notify.on
    if not wanted or (outcome.event == "stale" and not _stale_again(config, outcome)):
        return []
    failures = deliver.send(config.notify.urls, outcome.title(), outcome.body())
    for line in failures:
        _delivery_failed(config, outcome.site, outcome.event, line)
    return failures


def _record(config: Config, outcome: Outcome) -> None:
    site = config.sites[outcome.site]
    restic = repository(config, site.repository)
    size = restic.raw_size() if outcome.command == "backup" and outcome.ok else None
    records.save(restic, site=outcome.site, command=outcome.command, ok=outcome.ok,
                 seconds=outcome.duration, bytes_added=outcome.bytes_added,
                 repository_bytes=size, snapshot=outcome.snapshot_id, to=outcome.to,
                 error=outcome.error)


def _ping(config: Config, site: str, kind: ping.Kind, body: str) -> None:
    url = config.sites[site].ping_url
    if url is None:
        return
    problem = ping.send(url, kind, body)
    if problem is not None:
        _delivery_failed(config, site, f"ping {kind}", problem)


def write_metrics(config: Config, statuses: Sequence[SiteStatus] | None = None,
                  path: Path | None = None) -> None:
    """Rewrite the metrics file (``path``, else ``[monitoring] textfile``) from
    ``statuses``, or from the status of every configured site."""
    target = path or config.monitoring.textfile
    if target is None:
        return
    if statuses is None:
        from flowsafe.status import collect

        statuses = collect(config, None, strict=False)  # an unreadable repository is a metric
    metrics.write(target, statuses)


def before_run(config: Config, site: str, command: str) -> None:
    """A command starts for a site: a backup pings ``<ping_url>/start``."""
    if command == "backup" and site in config.sites:
        _guard("the start ping", lambda: _ping(config, site, "start",
                                                f"backup of site '{site}' started"))


def after_run(config: Config, outcome: Outcome) -> list[Outcome]:
    """A command finished for a site: copy (after a backup), record, notify, ping, write
    metrics. Returns the outcomes of the copies it made. Never raises."""
    configured = outcome.site in config.sites
    told = [outcome]
    if outcome.command == "backup" and outcome.ok and configured:
        for target in config.sites[outcome.site].copy_to:
            copied = _guard(f"the copy to '{target}'",
                            partial(copy_site, config, outcome.site, target))
            if copied is not None:
                told.append(copy_outcome(copied))
                if not copied.ok:
                    log.warning("the copy of site '%s' to '%s' failed (the backup itself is "
                                "good; the next backup or `flowsafe copy` retries): %s",
                                outcome.site, target, copied.error)
    if configured and outcome.command in RECORDED:  # copies after a backup: in its ping
        _guard(f"recording the {outcome.what} run in the repository",
               partial(_record, config, outcome))
    for each in told:
        _guard(f"notifying about the {each.what}", partial(notify, config, each))
    if outcome.command == "backup" and configured:
        kind: ping.Kind = "success" if all(each.ok for each in told) else "fail"
        body = "\n".join(each.summary() for each in told)
        _guard("the ping", lambda: _ping(config, outcome.site, kind, body))
    if outcome.command != "status" and configured:
        _guard("writing the metrics", lambda: write_metrics(config))
    return told[1:]


def after_status(config: Config, statuses: Sequence[SiteStatus], path: Path | None,
                 complete: bool) -> None:
    """``flowsafe status`` finished: notify stale sites (once a day each), write metrics
    to ``path`` and, when every site was covered, to ``[monitoring] textfile``."""
    for row in statuses:
        if not row.ok:
            after_run(config, Outcome(row.site, "status", False, row.problem))
    if path is not None:
        write_metrics(config, statuses, path)  # asked for: a failure is the command's
    if complete and config.monitoring.textfile is not None and path != config.monitoring.textfile:
        _guard("writing the metrics", lambda: write_metrics(config, statuses))
