"""Sample sites that update like ITFlow (a git clone of a local bare repository, files
owned by www-data), on a private MariaDB whose socket www-data can reach."""

from __future__ import annotations

import itertools
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from flowsafe.itflow.versions import git_commit
from flowsafe.mariadb.connection import connect
from flowsafe.mariadb.instance import PrivateServer, private_server
from flowsafe.sample import SampleSite, build_site
from flowsafe.sample.upstream import Upstream, make_updatable
from tests.cli import SiteUnderTest

_count = itertools.count()


@pytest.fixture(scope="module")
def public_dir() -> Iterator[Path]:
    """A folder www-data may enter (pytest's own temp folders are root-only)."""
    folder = Path(tempfile.mkdtemp(prefix="flowsafe-test-", dir="/tmp"))
    folder.chmod(0o755)
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="module")
def web_db(public_dir: Path) -> Iterator[PrivateServer]:
    """A private MariaDB whose socket the updater (PHP as www-data) can reach."""
    with private_server(public_dir, client_group="www-data") as server:
        yield server


class Updatable(SiteUnderTest):
    """A sample site that is a git clone with a newer version upstream, and its config."""

    def __init__(self, sample: SampleSite, server: PrivateServer, tmp: Path,
                 upstream: Upstream) -> None:
        super().__init__(sample, server, tmp)
        self.upstream = upstream

    @property
    def head(self) -> str | None:
        return git_commit(self.sample.path)

    def schema(self) -> str:
        with connect(self.target) as conn, conn.cursor() as cur:
            cur.execute("SELECT config_current_database_version FROM settings")
            row = cur.fetchone()
        assert row is not None
        return str(row[0])


def updatable(server: PrivateServer, base: Path, *, name: str = "itflow",
              failing: bool = False, config: Path | None = None) -> Updatable:
    """A new updatable site under ``base`` (www-data may enter it), configured with
    ``flowsafe init`` (database user root: a rollback restores) in ``base/etc`` or
    ``config``; the updater's PHP is told the private server's socket."""
    number = next(_count)
    base.mkdir(parents=True, exist_ok=True)
    base.chmod(0o755)
    sample = build_site(base / "www" / name, server.target(), database=f"up{number}_{name}",
                        seed=20 + number, scale=0.2)
    upstream = make_updatable(sample, base / f"{name}.git", failing=failing)
    made = Updatable(sample, server, base, upstream)
    if config is not None:
        made.config = config
    made.ok("init", "--site", str(sample.path), "--name", name, "--repo", str(base / "repo"),
            "--state-dir", str(base / "state"), "--db-socket", server.socket,
            "--db-user", "root")
    php = f"php -d mysqli.default_socket={server.socket} scripts/update_cli.php"
    with made.config.open("a") as toml:
        toml.write(f'\n[sites."{name}".update]\n'
                   f'commands = ["{php} --update", "{php} --update_db"]\n')
    return made
