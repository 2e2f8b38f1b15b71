"""The files of a sample install: ITFlow's PHP skeleton, ``config.php``, ``.git`` and ``uploads/``.

Small files are built in memory; 1-5 MB binaries are seeded random bytes made
when written. A ``ClientFile`` is one client upload, both on disk and as a row
of the ``files`` table.
"""

from __future__ import annotations

import io
import random
import zipfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from flowsafe.sample.content import Text, png, token
from flowsafe.sample.identity import Identity
from flowsafe.sample.plan import BINARY_MAX, BINARY_MIN, Plan
from flowsafe.secret import write_private

APP_VERSION = "26.08.2"
MIGRATIONS = ("2.0.0", "2.0.9", "2.0.10", "2.1.0", "2.2.4", "2.3.1", "2.4.0", "2.5.2", "2.6.7")
SCHEMA_VERSION = MIGRATIONS[-1]
BASE_URL = "itflow.example.com"
BACKUP_NAME = "itflow_20260701020000.zip"
BINARY_KINDS = (
    ("pdf", "application/pdf"),
    ("zip", "application/zip"),
    ("jpg", "image/jpeg"),
    ("docx", "application/vnd.openxmlformats-officedocument.wordprocessingml.document"),
    ("mp4", "video/mp4"),
)
TEXT_KINDS = (
    ("txt", "text/plain"),
    ("csv", "text/csv"),
    ("conf", "text/plain"),
    ("md", "text/markdown"),
    ("html", "text/html"),
)
HTACCESS = """# ITFlow uploads: serve files, never run them
<FilesMatch "\\.(php|phar|phtml|php[0-9]?|pl|py|cgi|sh)$">
    Require all denied
</FilesMatch>
Options -ExecCGI -Indexes
"""
DATABASE_VERSION_PHP = """<?php

/*
 * The database schema version this code expects: the highest migration in
 * admin/database_updates, compared as versions (2.0.10 is newer than 2.0.9).
 */
$database_versions = array_map(
    fn($file) => basename($file, '.php'),
    glob(__DIR__ . '/../admin/database_updates/*.php')
);
usort($database_versions, 'version_compare');
DEFINE("LATEST_DATABASE_VERSION", end($database_versions));
"""
DB_PHP = """<?php
// As ITFlow's includes/db.php: PHP 8 throws when the database is down (HTTP 500, CLI exit 255)
$mysqli = mysqli_connect($dbhost, $dbusername, $dbpassword, $database)
    or die('Database Connection Failed');
"""
LOGIN_PHP = """<?php

// The sample's login page, shaped like ITFlow's: setup redirect, HTTPS-only notice over plain
// HTTP (unless a proxy says X-Forwarded-Proto: https), then the form, rendered only once the
// settings and company rows have been read from the database.

header("Content-Security-Policy: default-src 'self'");

if (!file_exists('config.php')) {
    header("Location: /setup");
    exit();
}

require_once "config.php";

if (!isset($config_enable_setup) || $config_enable_setup == 1) {
    header("Location: /setup");
    exit();
}

if (
    $config_https_only
    && (!isset($_SERVER['HTTPS']) || $_SERVER['HTTPS'] !== 'on')
    && (!isset($_SERVER['HTTP_X_FORWARDED_PROTO'])
        || $_SERVER['HTTP_X_FORWARDED_PROTO'] !== 'https')
) {
    echo "Login is restricted as ITFlow defaults to HTTPS-only for enhanced security. "
        . "To login using HTTP, modify the config.php file by setting config_https_only to "
        . "false. However, this is strongly discouraged, especially when accessing from "
        . "potentially unsafe networks like the internet.";
    exit;
}

require_once "includes/db.php";

$row = mysqli_fetch_assoc(mysqli_query($mysqli, "
    SELECT settings.config_current_database_version, companies.company_name, companies.company_logo
    FROM settings
    LEFT JOIN companies ON settings.company_id = companies.company_id
    WHERE settings.company_id = 1
"));
$company_name = $row['company_name'];
$company_logo = $row['company_logo'];

?>
<!DOCTYPE html>
<html lang="en">
<head>
    <meta charset="utf-8">
    <title><?= htmlspecialchars($company_name) ?> | Login</title>
    <meta name="viewport" content="width=device-width, initial-scale=1">
    <meta name="robots" content="noindex">
</head>
<body class="hold-transition login-page">
<div class="login-box">
    <div class="login-logo">
        <img alt="<?= htmlspecialchars($company_name) ?> logo" height="110" width="380"
             src="<?= "uploads/settings/$company_logo" ?>">
    </div>
    <div class="card">
        <div class="card-body login-card-body">
            <h1><?= htmlspecialchars($company_name) ?></h1>
            <form method="post">
                <div class="input-group mb-3">
                    <input type="email" class="form-control" placeholder="Email"
                           name="email" value="" required autofocus>
                </div>
                <div class="input-group mb-3">
                    <input type="password" class="form-control" placeholder="Password"
                           name="password" required>
                </div>
                <button type="submit" class="btn btn-primary btn-block mb-3"
                        name="login">Sign In</button>
            </form>
        </div>
    </div>
</div>
</body>
</html>
"""
INDEX_PHP = "<?php\nheader('Location: login.php');\n"


@dataclass(frozen=True)
class Upload:
    """One file of the install: ``text`` as given, or ``size`` seeded random bytes."""

    relpath: str
    text: bytes = b""
    noise_key: str = ""
    noise_size: int = 0
    private: bool = False

    @property
    def size(self) -> int:
        return self.noise_size if self.noise_key else len(self.text)

    def data(self) -> bytes:
        if self.noise_key:
            return random.Random(self.noise_key).randbytes(self.noise_size)
        return self.text

    def write(self, root: Path) -> None:
        path = root / self.relpath
        path.parent.mkdir(parents=True, exist_ok=True)
        if self.private:
            write_private(path, self.data())
        else:
            path.write_bytes(self.data())


@dataclass(frozen=True)
class ClientFile:
    """A client's uploaded file: ``uploads/clients/<client_id>/<reference_name>``."""

    file_id: int
    client_id: int
    name: str
    ext: str
    mime: str
    reference_name: str
    upload: Upload
    created_at: str


def client_files(
    rng: random.Random,
    text: Text,
    first_id: int,
    binaries: int,
    texts: int,
    clients: int,
    when: Callable[[float], str],
) -> list[ClientFile]:
    """Client files from id ``first_id`` on: 1-5 MB binaries and small texts, shuffled."""
    kinds = [True] * binaries + [False] * texts
    rng.shuffle(kinds)
    made = []
    for index, binary in enumerate(kinds):
        file_id = first_id + index
        client_id = rng.randint(1, clients)
        ext, mime = rng.choice(BINARY_KINDS if binary else TEXT_KINDS)
        reference = f"{token(rng, 32)}.{ext}"
        relpath = f"uploads/clients/{client_id}/{reference}"
        if binary:
            upload = Upload(relpath, noise_key=token(rng, 16),
                            noise_size=rng.randint(BINARY_MIN, BINARY_MAX))
        else:
            upload = Upload(relpath, text.prose(rng, rng.randint(200, 20_000)).encode())
        name = f"{text.sentence(rng)[:40].strip()} {file_id}.{ext}"
        made.append(ClientFile(file_id, client_id, name, ext, mime, reference, upload,
                               when(index / len(kinds))))
    return made


def php_string(value: str) -> str:
    """``value`` as a PHP single-quoted literal (only ``\\`` and ``'`` are escaped)."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def config_php(identity: Identity, database: str, db_user: str) -> str:
    """ITFlow's ``config.php`` as setup writes it (no closing ``?>``)."""
    return (
        "<?php\n\n"
        "//Database Settings\n"
        "$dbhost = 'localhost';\n"
        f"$dbusername = {php_string(db_user)};\n"
        f"$dbpassword = {php_string(identity.db_password)};\n"
        f"$database = {php_string(database)};\n\n"
        f"$config_app_name = 'ITFlow';\n"
        f"$config_base_url = {php_string(BASE_URL)};\n"
        "$config_https_only = TRUE;\n"
        "$repo_branch = 'master';\n"
        f"$installation_id = {php_string(identity.installation_id)};\n"
        "$config_enable_setup = 0;\n"
    )


def skeleton(identity: Identity, database: str, db_user: str) -> list[Upload]:
    """The PHP side of the install: config, version files, migrations, stubs, .git, custom/."""
    files = [
        Upload("config.php", config_php(identity, database, db_user).encode()),
        Upload("includes/app_version.php", f'<?php\nDEFINE("APP_VERSION", "{APP_VERSION}");\n'
               .encode()),
        Upload("includes/database_version.php", DATABASE_VERSION_PHP.encode()),
        Upload("index.php", INDEX_PHP.encode()),
        Upload("login.php", LOGIN_PHP.encode()),
        Upload("includes/db.php", DB_PHP.encode()),
        Upload(".git/HEAD", b"ref: refs/heads/master\n"),
        Upload(".git/refs/heads/master", f"{identity.commit}\n".encode()),
        Upload("custom/custom_functions.php",
               b"<?php\n// Local customisations kept across updates (gitignored).\n"),
    ]
    files += [
        Upload(
            f"admin/database_updates/{version}.php",
            (f"<?php\n\n// Database update to {version}\nmysqli_query($mysqli, \"UPDATE "
             f"`settings` SET `config_current_database_version` = '{version}'\");\n").encode(),
        )
        for version in MIGRATIONS
    ]
    return files


def other_uploads(rng: random.Random, text: Text, plan: Plan, identity: Identity) -> list[Upload]:
    """Everything in ``uploads/`` but client files: attachments, avatars, logo, scratch, backup."""
    files = [Upload("uploads/.htaccess", HTACCESS.encode()),
             Upload("uploads/settings/logo.png", png(rng, 96, 32))]
    files += [Upload(f"uploads/users/{user.user_id}/avatar.png", png(rng, 32, 32))
              for user in identity.agents]
    for index in range(plan.attachments):
        ticket_id = 1 + index * plan.tickets // plan.attachments
        ext = rng.choice(("eml", "txt", "png"))
        body = png(rng, 48, 48) if ext == "png" else text.prose(rng, 3000).encode()
        files.append(Upload(f"uploads/tickets/{ticket_id}/{token(rng, 32)}.{ext}", body))
    files += [
        Upload(f"uploads/expenses/{token(rng, 32)}.pdf",
               b"%PDF-1.4\n% receipt\n" + text.prose(rng, 1500).encode() + b"\n%%EOF\n")
        for _ in range(plan.receipts)
    ]
    files.append(Upload(f"uploads/tmp/{token(rng, 16)}.tmp", text.prose(rng, 500).encode()))
    files.append(Upload(f"uploads/backups/{BACKUP_NAME}", _old_backup(text, rng), private=True))
    return files


def _old_backup(text: Text, rng: random.Random) -> bytes:
    """An ITFlow backup in the unencrypted 2025-2026 format (a zip of db.sql + version.txt)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, body in (
            ("db.sql", f"-- ITFlow backup\nINSERT INTO `logs` VALUES (1,'Backup','Create',"
                       f"'{text.sentence(rng)}');\n"),
            ("version.txt", "ITFlow Version: 26.06\nDatabase Version: 2.6.0\n"),
        ):
            archive.writestr(zipfile.ZipInfo(name, (2026, 7, 1, 2, 0, 0)), body)
    return buffer.getvalue()


def write_all(root: Path, files: Iterable[Upload]) -> None:
    for upload in files:
        upload.write(root)
