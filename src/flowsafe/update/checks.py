"""After ITFlow's updater ran: did the update really happen? ITFlow's updater reports
success when its ``git pull`` failed, so flowsafe looks for itself: HEAD at the upstream
commit, APP_VERSION and the expected schema version those of the upstream code, the
database at that schema version, no local changes in tracked files, and the login
page answering (PHP as an unprivileged account, against the live database)."""

from __future__ import annotations

from flowsafe.itflow import login_check
from flowsafe.itflow.site import schema_version_in_use
from flowsafe.itflow.versions import compare_versions
from flowsafe.mariadb.connection import connect
from flowsafe.sites import Site
from flowsafe.update.git import Clone


def _same(a: str | None, b: str | None) -> bool:
    return a is not None and b is not None and compare_versions(a, b) == 0


def code_problems(site: Site, clone: Clone, commit: str, app: str | None,
                  expected: str | None) -> list[str]:
    """What is wrong with the code and database of ``site`` (opened after the updater ran)
    compared with the upstream ``commit``, ``app`` version and ``expected`` schema."""
    problems = []
    head = clone.head()
    if head != commit:
        problems.append(f"HEAD is at {head[:8]}, not at the upstream commit {commit[:8]}: the "
                        "updater's git pull did not apply (ITFlow's updater says \"Update "
                        "successful\" even then; read its output above)")
    installed = site.install
    if not _same(installed.app_version, app):
        problems.append(f"APP_VERSION is {installed.app_version}, the upstream code says {app}")
    if not _same(installed.expected_schema_version, expected):
        problems.append(f"the code expects schema {installed.expected_schema_version}, the "
                        f"upstream code {expected}")
    with connect(site.database) as conn:
        in_db = schema_version_in_use(conn)
    if not _same(in_db, installed.expected_schema_version):
        problems.append(f"the database is at schema {in_db}, the code expects "
                        f"{installed.expected_schema_version}: the migration did not finish")
    changes = clone.local_changes()
    if changes:
        problems.append(f"local changes in tracked files: {', '.join(changes[:5])}")
    return problems


def login_page(site: Site) -> str:
    """The live site answers its login page (``LoginPageError`` when it does not)."""
    socket = site.database.socket_path() if site.database.uses_socket else None
    return login_check.check(site.install.path, socket=socket)
