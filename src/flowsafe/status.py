"""``flowsafe status``: per site, the newest backup and its age, the last attempt's
result on this machine, the last drill and when the credentials last decrypted in one,
the key escrow, the last notification failure, and per repository (the site's own and
its copies) what is there and the last copy. Stale means exit 1; warnings do not change
the exit code. With ``--all`` (or no site configured here) every site found in the
repositories is covered: one monitoring host watches the fleet."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal

from flowsafe import runs
from flowsafe.config import Config
from flowsafe.drill.record import DrillRecord
from flowsafe.errors import ConfigError, FlowsafeError
from flowsafe.fleet.inventory import Inventory, SiteRecords, fleet, list_repository
from flowsafe.fleet.inventory import site_repositories as repositories_of
from flowsafe.mariadb.connection import connect
from flowsafe.notify.records import NOTIFY_FAILURE, RunRecord
from flowsafe.offsite.placement import offsite_warning
from flowsafe.scan import scan_tree
from flowsafe.sites import Site, open_site
from flowsafe.swap import journal

CREDENTIALS_WARN_DAYS = 31

State = Literal["ok", "warning", "problem"]


@dataclass(frozen=True)
class Rollback:
    """State the last restore replaced, kept for ``flowsafe undo``."""

    restored_at: datetime
    snapshot: str
    database: str | None
    folder: str | None
    bytes: int


def rollback_status(state_dir: Path, site: Site) -> Rollback | None:
    kept = journal.read(state_dir, site.name).rollback
    if kept is None:
        return None
    size = 0
    if kept.files is not None and kept.files.sink.is_dir():
        size += scan_tree(kept.files.sink, []).bytes
    if kept.db is not None:
        with connect(site.database, database="") as conn, conn.cursor() as cur:
            cur.execute("SELECT COALESCE(SUM(DATA_LENGTH + INDEX_LENGTH), 0) FROM "
                        "information_schema.TABLES WHERE TABLE_SCHEMA = %s", (kept.db.sink,))
            row = cur.fetchone()
            size += int(row[0]) if row else 0
    return Rollback(kept.restored_at, kept.snapshot, kept.db.sink if kept.db else None,
                    str(kept.files.sink) if kept.files else None, size)


@dataclass(frozen=True)
class RepositoryStatus:
    """What one repository holds of a site."""

    name: str
    url: str
    snapshots: int
    newest: datetime | None
    newest_id: str | None
    bytes: int | None
    last_drill: datetime | None
    last_drill_ok: bool | None
    last_copy: dict[str, Any] | None  # this machine's record of the last copy into it
    escrowed: bool
    error: str | None


@dataclass(frozen=True)
class SiteStatus:
    """One site's health."""

    site: str
    last_backup: datetime | None
    last_backup_id: str | None
    age_hours: float | None
    snapshots: int
    last_attempt: dict[str, Any] | None
    repository: str
    repository_bytes: int
    max_age_hours: float
    last_verified: datetime | None
    last_verified_snapshot: str | None
    ok: bool
    problem: str | None
    rollback: Rollback | None
    state: State = "ok"
    warnings: list[str] = field(default_factory=list)
    configured: bool = True
    last_drill: datetime | None = None
    last_drill_ok: bool | None = None
    credentials_decrypted: datetime | None = None
    escrowed: bool = False
    last_backup_seconds: float | None = None
    last_backup_added: int | None = None
    last_run: dict[str, Any] | None = None  # the newest run record, from any machine
    last_notification_failure: dict[str, Any] | None = None
    repositories: list[RepositoryStatus] = field(default_factory=list)


def _drill_problem(config: Config, first_backup: datetime,
                   verified: DrillRecord | None) -> str | None:
    """Stale when the last successful drill (or, never drilled, the first backup) is older
    than the limit."""
    limit = timedelta(days=config.monitoring.max_drill_age_days)
    since = verified.time if verified else first_backup
    if datetime.now(UTC) - since <= limit:
        return None
    if verified is None:
        return f"no successful drill yet (limit {limit.days} days): run `flowsafe drill`"
    return (f"last successful drill was {(datetime.now(UTC) - since).days} days ago (limit "
            f"{config.monitoring.max_drill_age_days:g} days): run `flowsafe drill`")


def _warnings(config: Config, name: str, records: SiteRecords,
              repos: list[RepositoryStatus]) -> list[str]:
    """What is not yet a problem but needs a person: no off-site copy, never drilled, a
    failed last drill, credentials not decrypted in a drill for a month, copies that did
    not happen."""
    found = []
    if name in config.sites and (unsafe := offsite_warning(config, name)):
        found.append(unsafe)
    drills = records.drills
    if records.backups and not drills:
        found.append(f"never drilled: run `flowsafe drill --site {name}` (status fails "
                     f"{config.monitoring.max_drill_age_days:g} days after the first backup)")
    elif drills and not drills[-1].ok:
        found.append(f"the last drill ({drills[-1].time:%Y-%m-%d}) failed: run "
                     f"`flowsafe drill --site {name}`")
    decrypted = [d.time for d in drills if d.credentials == "ok"]
    if drills and not decrypted:
        found.append("the credentials never decrypted in a drill: run `flowsafe drill "
                     "--age-identity FILE` with the key that lives off this VM")
    elif decrypted and datetime.now(UTC) - decrypted[-1] > timedelta(CREDENTIALS_WARN_DAYS):
        days = (datetime.now(UTC) - decrypted[-1]).days
        found.append(f"the credentials last decrypted in a drill {days} days ago (more than "
                     f"{CREDENTIALS_WARN_DAYS}): run `flowsafe drill --age-identity FILE`")
    for repo in repos[1:]:
        if repo.error:
            found.append(f"copy repository '{repo.name}': {repo.error}")
        if repo.last_copy and not repo.last_copy.get("ok"):
            found.append(f"the last copy to '{repo.name}' failed: {repo.last_copy.get('error')}"
                         f"; it is retried after the next backup or with `flowsafe copy`")
    return found


def _repository_status(config: Config, site: str, inventory: Inventory,
                       sizes: dict[str, int | None]) -> RepositoryStatus:
    records = inventory.site(site)
    newest = records.backups[-1] if records.backups else None
    if inventory.name not in sizes:
        sizes[inventory.name] = None if inventory.error else inventory.restic.raw_size()
    return RepositoryStatus(
        name=inventory.name,
        url=inventory.restic.repo.display_url,
        snapshots=len(records.backups),
        newest=newest.time if newest else None,
        newest_id=newest.short_id if newest else None,
        bytes=sizes[inventory.name],
        last_drill=records.drills[-1].time if records.drills else None,
        last_drill_ok=records.drills[-1].ok if records.drills else None,
        last_copy=runs.read(config.state_dir, site).get(f"copy:{inventory.name}"),
        escrowed=bool(records.keys),
        error=inventory.error,
    )


def _run_dict(run: RunRecord | None) -> dict[str, Any] | None:
    if run is None:
        return None
    return {"time": run.time.isoformat(), "command": run.command, "ok": run.ok,
            "host": run.host, "to": run.to}


def site_status(config: Config, name: str, inventories: dict[str, Inventory],
                primary: str | None = None, strict: bool = True) -> SiteStatus:
    """The status of one site from the listings of its repositories. ``strict``: a
    configured site's own repository that cannot be read raises (else it is the problem)."""
    configured = name in config.sites
    names = repositories_of(config, name, primary)
    main = inventories[names[0]]
    if main.exception is not None and configured and strict:
        raise main.exception
    sizes: dict[str, int | None] = {}
    repos = [_repository_status(config, name, inventories[n], sizes) for n in names]
    records = main.site(name)
    drills = sorted((d for n in names for d in inventories[n].site(name).drills),
                    key=lambda d: d.time)  # a drill of a copy proves the site too
    records = replace(records, drills=drills)
    snaps = records.backups
    limit = config.monitoring.max_backup_age_hours
    newest = snaps[-1] if snaps else None
    age = (datetime.now(UTC) - newest.time).total_seconds() / 3600 if newest else None
    local = runs.read(config.state_dir, name)
    passed = [d for d in records.drills if d.ok]
    verified = passed[-1] if passed else None
    backups_run = [r for r in records.runs if r.command == "backup" and r.ok]
    problem = None
    if main.error:
        problem = f"repository '{main.name}' cannot be read: {main.error}"
    elif newest is None:
        problem = "no backup yet: run `flowsafe backup`"
    elif age is not None and age > limit:
        problem = f"newest backup is {age:.1f} h old (limit {limit:g} h)"
    else:
        problem = _drill_problem(config, snaps[0].time, verified)
    warnings = _warnings(config, name, records, repos)
    decrypted = [d.time for d in records.drills if d.credentials == "ok"]
    rollback = None
    if configured and main.exception is None:
        try:
            rollback = rollback_status(config.state_dir, open_site(config, name))
        except FlowsafeError as exc:  # the site itself is gone or unreadable: the problem
            problem = str(exc)
    return SiteStatus(
        site=name,
        last_backup=newest.time if newest else None,
        last_backup_id=newest.short_id if newest else None,
        age_hours=age,
        snapshots=len(snaps),
        last_attempt=local.get("backup"),
        repository=main.restic.repo.url,
        repository_bytes=repos[0].bytes or 0,
        max_age_hours=limit,
        last_verified=verified.time if verified else None,
        last_verified_snapshot=verified.snapshot if verified else None,
        ok=problem is None,
        problem=problem,
        rollback=rollback,
        state="problem" if problem else "warning" if warnings else "ok",
        warnings=warnings,
        configured=configured,
        last_drill=records.drills[-1].time if records.drills else None,
        last_drill_ok=records.drills[-1].ok if records.drills else None,
        credentials_decrypted=decrypted[-1] if decrypted else None,
        escrowed=bool(records.keys),
        last_backup_seconds=backups_run[-1].seconds if backups_run else None,
        last_backup_added=backups_run[-1].bytes_added if backups_run else None,
        last_run=_run_dict(records.runs[-1] if records.runs else None),
        last_notification_failure=local.get(NOTIFY_FAILURE),
        repositories=repos,
    )


def collect(config: Config, site_name: str | None, all_sites: bool = False,
            strict: bool = True) -> list[SiteStatus]:
    """Status of one site, of every configured site, or (``all_sites``, or nothing
    configured here) of every site found in the configured repositories."""
    return collect_with_inventories(config, site_name, all_sites, strict)[0]


def collect_with_inventories(config: Config, site_name: str | None, all_sites: bool = False,
                             strict: bool = True
                             ) -> tuple[list[SiteStatus], dict[str, Inventory]]:
    """``collect``, and the repository listings it read (for the report)."""
    inventories: dict[str, Inventory] = {}

    def listed(name: str) -> Inventory:
        if name not in inventories:
            inventories[name] = list_repository(config, name)
        return inventories[name]

    if site_name is not None and site_name in config.sites:
        wanted = {site_name: config.sites[site_name].repository}
    elif site_name is None and config.sites and not all_sites:
        wanted = {n: s.repository for n, s in config.sites.items()}
    else:
        if not config.repositories:
            raise ConfigError("no repository configured: run `flowsafe init --repo URL` first")
        wanted = fleet(config, [listed(n) for n in config.repositories])
        if site_name is not None:
            if site_name not in wanted:
                known = ", ".join(sorted(wanted)) or "none"
                raise ConfigError(f"no site named '{site_name}' in the config or in its "
                                  f"repositories (known: {known})")
            wanted = {site_name: wanted[site_name]}
    for name, primary in wanted.items():
        for repo in repositories_of(config, name, primary):
            listed(repo)
    return ([site_status(config, name, inventories, primary, strict)
             for name, primary in wanted.items()], inventories)


def run_status(config: Config, site_name: str | None, all_sites: bool = False,
               prometheus: Path | None = None) -> list[SiteStatus]:
    """``flowsafe status``: collect, tell (stale sites are notified, metrics written)."""
    from flowsafe.notify import announce

    statuses = collect(config, site_name, all_sites)
    announce.after_status(config, statuses, prometheus, complete=site_name is None)
    return statuses
