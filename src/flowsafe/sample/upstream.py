"""A sample site that updates the way ITFlow does (for ``flowsafe update``'s tests and demo).

``make_updatable`` turns a built sample site into a git clone of a local bare
repository that holds two versions of the sample app: the installed one and a newer
one with two migrations that raise the schema version (or, ``failing=True``, whose
second migration fails halfway). Both carry ``scripts/update_cli.php``, shaped like
ITFlow's: only the owner of the file may run it; ``--update`` is a plain ``git pull``
whose exit status is ignored ("Update successful" even when the pull failed);
``--update_db`` applies each ``admin/database_updates/<version>.php`` newer than the
database and records it, and on an error prints "Applied database update X" for
those done, the error on stderr, and exits 1. Site and repository end up owned by
``owner`` (``www-data``), as on a real install.
"""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from flowsafe import execute
from flowsafe.errors import ConfigError
from flowsafe.local_users import Account, chown_tree
from flowsafe.sample.files import APP_VERSION, SCHEMA_VERSION
from flowsafe.sample.site import SampleSite

NEW_APP_VERSION = "26.09.0"
NEW_MIGRATIONS = ("2.6.8", "2.6.9")
NEW_SCHEMA_VERSION = NEW_MIGRATIONS[-1]
NEW_FILE = "includes/release_notes.php"  # a file only the newer version has
ADDED_COLUMN = ("clients", "client_sample_rating")  # what migration 2.6.8 adds
GITIGNORE = "/config.php\n/uploads/\n/custom/\n"
GIT_ENV = {
    "GIT_AUTHOR_NAME": "ITFlow sample", "GIT_AUTHOR_EMAIL": "sample@itflow.example.com",
    "GIT_COMMITTER_NAME": "ITFlow sample", "GIT_COMMITTER_EMAIL": "sample@itflow.example.com",
    "GIT_AUTHOR_DATE": "2026-08-01T00:00:00Z", "GIT_COMMITTER_DATE": "2026-08-01T00:00:00Z",
    "GIT_CONFIG_GLOBAL": "/dev/null", "GIT_CONFIG_SYSTEM": "/dev/null",
}
UPDATE_CLI_PHP = r"""<?php

// The sample's scripts/update_cli.php, shaped like ITFlow's (and with its traps).

chdir(__DIR__);

if (php_sapi_name() !== 'cli') {
    die("This script can only be run from the command line.\n");
}

$fileOwner = fileowner(__FILE__);
if (posix_geteuid() !== $fileOwner) {
    $ownerName = posix_getpwuid($fileOwner)['name'] ?? 'unknown';
    fwrite(STDERR, "Error: This script must be run by the file owner ($ownerName) to proceed.\n"
        . "You could try sudo -u $ownerName php update_cli.php\n");
    exit(1);
}

require_once "../config.php";
require_once "../includes/db.php";

$options = getopt('', ['update', 'update_db']);

if (isset($options['update'])) {
    // A plain git pull; its exit status is ignored, as ITFlow's updater does
    exec("git pull 2>&1", $output, $return_var);
    echo implode("\n", $output) . "\n";
    if (strpos(implode("\n", $output), 'Already up to date.') === false) {
        echo "Update successful\n";
    }
}

if (isset($options['update_db'])) {
    require_once "../includes/database_version.php";
    $row = mysqli_fetch_assoc(mysqli_query(
        $mysqli, "SELECT config_current_database_version FROM settings LIMIT 1"));
    $current = $row['config_current_database_version'];
    $old = $current;
    $files = [];
    foreach (glob(__DIR__ . "/../admin/database_updates/*.php") as $file) {
        $files[basename($file, ".php")] = $file;
    }
    uksort($files, "version_compare");
    $applied = [];
    $error = null;
    foreach ($files as $version => $file) {
        if (version_compare($version, $current, "<=")) {
            continue;
        }
        try {
            require $file;
        } catch (Throwable $e) {
            $error = "$version: " . $e->getMessage();
            break;
        }
        mysqli_query($mysqli, "UPDATE settings SET config_current_database_version = '$version'");
        $current = $version;
        $applied[] = $version;
    }
    foreach ($applied as $version) {
        echo "Applied database update $version\n";
    }
    if ($error) {
        fwrite(STDERR, "Error: database update failed at $error\n");
        fwrite(STDERR, "The database is at version $current - re-running will resume at the "
            . "failed update.\n");
        exit(1);
    }
    if ($applied) {
        echo "Database updated from version $old to " . LATEST_DATABASE_VERSION . ".\n";
    } else {
        echo "Database is already at the latest version (" . LATEST_DATABASE_VERSION
            . "). No updates were applied.\n";
    }
}
"""


@dataclass(frozen=True)
class Upstream:
    """The bare repository a sample site updates from, and what each version holds."""

    repository: Path
    old_commit: str
    new_commit: str
    old_app_version: str
    new_app_version: str
    old_schema_version: str
    new_schema_version: str


def _migration(version: str, statement: str) -> str:
    return (f"<?php\n\n// Database update to {version}\n"
            f"mysqli_query($mysqli, \"{statement}\");\n")


def _git(cwd: Path, *args: str) -> str:
    return execute.run(["git", *args], cwd=str(cwd), env=GIT_ENV).stdout.decode().strip()


def _newer_version(work: Path, failing: bool) -> None:
    """Edit a checkout of the installed version into the newer one."""
    (work / "includes" / "app_version.php").write_text(
        f'<?php\nDEFINE("APP_VERSION", "{NEW_APP_VERSION}");\n')
    (work / NEW_FILE).write_text(f"<?php\n// What changed in {NEW_APP_VERSION}.\n")
    updates = work / "admin" / "database_updates"
    table, column = ADDED_COLUMN
    (updates / f"{NEW_MIGRATIONS[0]}.php").write_text(_migration(
        NEW_MIGRATIONS[0], f"ALTER TABLE `{table}` ADD `{column}` INT(11) NULL DEFAULT NULL"))
    second = ("ALTER TABLE `no_such_table` ADD `x` INT(11)" if failing else
              "CREATE TABLE `release_notes` (`note_id` INT(11) NOT NULL PRIMARY KEY, "
              "`note_text` VARCHAR(200) NOT NULL)")
    (updates / f"{NEW_MIGRATIONS[1]}.php").write_text(_migration(NEW_MIGRATIONS[1], second))


def make_updatable(site: SampleSite, repository: Path, *, owner: str = "www-data",
                   failing: bool = False) -> Upstream:
    """Make ``site`` a git clone of a new bare ``repository`` with a newer version waiting.

    The site's files and the repository are then owned by ``owner``.
    """
    account = Account.named(owner)
    if account is None:
        raise ConfigError(f"no account '{owner}' to own the sample site")
    if repository.exists():
        raise ConfigError(f"{repository} exists: a sample upstream needs a new folder")
    execute.require("git")
    path = site.path
    shutil.rmtree(path / ".git")
    (path / ".gitignore").write_text(GITIGNORE)
    (path / "scripts").mkdir(exist_ok=True)
    (path / "scripts" / "update_cli.php").write_text(UPDATE_CLI_PHP)
    _git(path, "init", "-q", "-b", "master")
    _git(path, "add", "-A")
    _git(path, "commit", "-q", "-m", f"ITFlow {APP_VERSION}")
    old = _git(path, "rev-parse", "HEAD")
    _git(path.parent, "clone", "-q", "--bare", str(path), str(repository))
    _git(path, "remote", "add", "origin", str(repository))
    _git(path, "fetch", "-q", "origin")
    _git(path, "branch", "-q", "--set-upstream-to=origin/master", "master")
    with tempfile.TemporaryDirectory(prefix="flowsafe-upstream-") as tmp:
        work = Path(tmp) / "work"
        _git(Path(tmp), "clone", "-q", str(repository), str(work))
        _newer_version(work, failing)
        _git(work, "add", "-A")
        _git(work, "commit", "-q", "-m", f"ITFlow {NEW_APP_VERSION}")
        new = _git(work, "rev-parse", "HEAD")
        _git(work, "push", "-q", "origin", "master")
    chown_tree(path, account.uid, account.gid)
    chown_tree(repository, account.uid, account.gid)
    return Upstream(repository, old, new, APP_VERSION, NEW_APP_VERSION, SCHEMA_VERSION,
                    NEW_SCHEMA_VERSION)
