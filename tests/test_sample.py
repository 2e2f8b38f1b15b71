"""The sample site generator: deterministic, consistent with ITFlow's formats, and servable."""

from __future__ import annotations

import hashlib
import re
import shutil
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import bcrypt
import pytest

from flowsafe import execute
from flowsafe.itflow.crypto import decrypt_field, unwrap_master_key
from flowsafe.mariadb.connection import DbTarget, connect
from flowsafe.mariadb.instance import PrivateServer, free_port
from flowsafe.sample import SampleSite, build_site, nightly_change
from flowsafe.sample.plan import Plan
from flowsafe.sample.schema import TABLES
from flowsafe.secret import Secret

Snapshot = dict[str, dict[Any, tuple[Any, ...]]]
CONFIG_LINE = re.compile(r"^\$(\w+)\s*=\s*('(?:[^'\\]|\\.)*'|[^;]+);$", re.MULTILINE)


def snapshot(server: DbTarget, database: str) -> Snapshot:
    """Every row of every sample table, by primary key."""
    rows: Snapshot = {}
    with connect(server, database=database) as conn, conn.cursor() as cur:
        for table in TABLES:
            cur.execute(f"SELECT * FROM `{table.name}`")
            rows[table.name] = {row[0]: tuple(row) for row in cur.fetchall()}
    return rows


def file_digests(root: Path) -> dict[str, str]:
    return {
        str(path.relative_to(root)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(root.rglob("*"))
        if path.is_file()
    }


def query(server: DbTarget, database: str, sql: str) -> list[tuple[Any, ...]]:
    with connect(server, database=database) as conn, conn.cursor() as cur:
        cur.execute(sql)
        return [tuple(row) for row in cur.fetchall()]


def php_config(path: Path) -> dict[str, str]:
    """config.php's assignments, single-quoted values unescaped as PHP does."""
    values = {}
    for name, raw in CONFIG_LINE.findall(path.read_text(encoding="utf-8")):
        if raw.startswith("'"):
            raw = re.sub(r"\\([\\'])", r"\1", raw[1:-1])
        values[name] = raw
    return values


@pytest.fixture(scope="module")
def site(
    mariadb_server: PrivateServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[SampleSite]:
    root = mariadb_server.target()
    built = build_site(tmp_path_factory.mktemp("sample") / "site", root, database="sample_main")
    yield built
    with connect(root) as conn, conn.cursor() as cur:
        cur.execute("DROP DATABASE IF EXISTS `sample_main`")


def test_build_and_night_are_deterministic(mariadb_server: PrivateServer, tmp_path: Path) -> None:
    root = mariadb_server.target()
    results = []
    for name in ("a", "b"):
        built = build_site(tmp_path / name, root, database="sample_twice", seed=7)
        first = snapshot(root, "sample_twice"), file_digests(built.path)
        nightly_change(built, root, day=3, new_uploads=3)
        results.append((built, first, (snapshot(root, "sample_twice"), file_digests(built.path))))
    (site_a, built_a, night_a), (site_b, built_b, night_b) = results
    assert site_a.master_key == site_b.master_key and site_a.users == site_b.users
    assert built_a == built_b
    assert night_a == night_b
    assert night_a != built_a
    other = build_site(tmp_path / "c", root, database="sample_twice", seed=8)
    assert other.master_key != site_a.master_key
    assert file_digests(other.path) != built_a[1]
    with connect(root) as conn, conn.cursor() as cur:
        cur.execute("DROP DATABASE `sample_twice`")


def test_agents_unwrap_the_master_key(site: SampleSite, mariadb_server: PrivateServer) -> None:
    users = query(
        mariadb_server.target(),
        site.database,
        "SELECT user_email, user_password, user_type, "
        "user_specific_encryption_ciphertext FROM users",
    )
    by_email = {email: (hashed, kind, wrapped) for email, hashed, kind, wrapped in users}
    assert len(site.users) >= 2 and site.portal_users
    assert re.fullmatch(r"[A-Za-z0-9]{16}", site.master_key)
    for email, password in site.users.items():
        hashed, kind, wrapped = by_email[email]
        assert kind == 1 and hashed.startswith("$2y$10$")
        assert bcrypt.checkpw(password.encode(), hashed.encode())
        assert unwrap_master_key(wrapped, password) == site.master_key
    for email in site.portal_users:
        assert by_email[email][1:] == (2, None)


def test_credentials_decrypt(site: SampleSite, mariadb_server: PrivateServer) -> None:
    root = mariadb_server.target()
    rows = query(
        root, site.database, "SELECT credential_username, credential_password FROM credentials"
    )
    usernames = [decrypt_field(username, site.master_key) for username, _ in rows]
    passwords = [decrypt_field(password, site.master_key) for _, password in rows]
    assert "" in usernames and all(passwords)
    assert any(not text.isascii() for text in passwords)
    legacy = query(root, site.database, "SELECT login_password FROM legacy_logins")
    assert legacy and all(isinstance(value, bytes) for (value,) in legacy)
    with pytest.raises(UnicodeDecodeError):
        legacy[0][0].decode("utf-8")


def test_every_files_row_has_its_file(site: SampleSite, mariadb_server: PrivateServer) -> None:
    rows = query(
        mariadb_server.target(),
        site.database,
        "SELECT file_client_id, file_reference_name, file_size FROM files",
    )
    assert rows
    for client_id, reference, size in rows:
        path = site.path / "uploads" / "clients" / str(client_id) / reference
        assert path.stat().st_size == size
    assert any(1 << 20 <= size <= 5 << 20 for _, _, size in rows)


def test_install_layout(site: SampleSite, mariadb_server: PrivateServer) -> None:
    root = site.path
    uploads = root / "uploads"
    assert (uploads / ".htaccess").read_text().startswith("#")
    assert (uploads / "settings" / "logo.png").read_bytes().startswith(b"\x89PNG")
    assert len(list((uploads / "users").glob("*/avatar.png"))) == len(site.users)
    assert list((uploads / "tickets").glob("*/*")) and list((uploads / "expenses").iterdir())
    assert len(list((uploads / "tmp").iterdir())) == 1
    (backup,) = (uploads / "backups").iterdir()
    assert re.fullmatch(r"itflow_\d{14}\.zip", backup.name)
    assert backup.stat().st_mode & 0o777 == 0o600
    assert list((root / "custom").iterdir())
    assert (root / ".git" / "HEAD").read_text() == "ref: refs/heads/master\n"
    assert re.fullmatch(r"[0-9a-f]{40}\n", (root / ".git/refs/heads/master").read_text())
    assert f'"{site.app_version}"' in (root / "includes/app_version.php").read_text()
    migrations = sorted(p.stem for p in (root / "admin/database_updates").glob("*.php"))
    assert site.schema_version in migrations and len(migrations) >= 5
    (version,) = query(
        mariadb_server.target(),
        site.database,
        "SELECT config_current_database_version FROM settings",
    )
    assert version == (site.schema_version,)


def test_config_php_values(site: SampleSite, mariadb_server: PrivateServer) -> None:
    text = (site.path / "config.php").read_text()
    assert text.startswith("<?php") and "?>" not in text
    values = php_config(site.path / "config.php")
    assert values["dbhost"] == "localhost"
    assert values["dbusername"] == site.db_user
    assert values["dbpassword"] == site.db_password
    assert values["database"] == site.database
    assert values["config_base_url"] == "itflow.example.com"
    assert values["config_https_only"] == "TRUE" and values["config_enable_setup"] == "0"
    assert values["repo_branch"] == "master"
    assert re.fullmatch(r"[A-Za-z0-9]{32}", values["installation_id"])
    assert all(char in site.db_password for char in "#\"' \\")
    account = DbTarget(
        site.database,
        socket=mariadb_server.socket,
        user=values["dbusername"],
        password=Secret(values["dbpassword"]),
    )
    assert query(account, site.database, "SELECT COUNT(*) FROM clients")[0][0] > 0


needs_php = pytest.mark.skipif(shutil.which("php") is None, reason="php is not installed")


@needs_php
def test_php_reads_config_and_versions(site: SampleSite) -> None:
    script = (
        "require 'config.php'; require 'includes/app_version.php'; "
        "require 'includes/database_version.php'; "
        'echo $dbpassword, "\\n", APP_VERSION, "\\n", LATEST_DATABASE_VERSION;'
    )
    result = execute.run(["php", "-r", script], cwd=str(site.path))
    assert result.stdout.decode().split("\n") == [
        site.db_password,
        site.app_version,
        site.schema_version,
    ]


@needs_php
def test_login_page_is_itflow_shaped(site: SampleSite, mariadb_server: PrivateServer) -> None:
    """Over plain HTTP only ITFlow's HTTPS-only notice; behind a TLS proxy, the form."""
    port = free_port()
    server = execute.spawn(
        ["php", "-d", f"mysqli.default_socket={mariadb_server.socket}", "-S",
         f"127.0.0.1:{port}", "-t", str(site.path)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )

    def get(headers: dict[str, str]) -> bytes:
        request = urllib.request.Request(f"http://127.0.0.1:{port}/login.php", headers=headers)
        deadline = time.monotonic() + 10
        while True:
            try:
                with urllib.request.urlopen(request) as response:
                    assert response.status == 200
                    body: bytes = response.read()
                    return body
            except urllib.error.URLError:
                assert time.monotonic() < deadline, "php -S did not answer"
                time.sleep(0.1)

    try:
        plain = get({})
        assert plain.startswith(b"Login is restricted as ITFlow defaults to HTTPS-only")
        assert b"<form" not in plain
        proxied = get({"X-Forwarded-Proto": "https"})
        assert b'name="email"' in proxied and b'type="password"' in proxied
        assert b"</h1>" in proxied and b"<h1></h1>" not in proxied  # the company, from the DB
    finally:
        server.kill()
        server.wait()


def test_nightly_change_fraction_and_uploads(
    database: DbTarget, mariadb_server: PrivateServer, tmp_path: Path
) -> None:
    root = mariadb_server.target()
    built = build_site(tmp_path / "site", root, database=database.database, scale=0.5)
    before = snapshot(root, built.database)
    nightly_change(built, root, day=1, new_uploads=4, row_fraction=0.02)
    after = snapshot(root, built.database)
    added = {name: after[name].keys() - rows.keys() for name, rows in before.items()}
    updated = {
        name: [key for key, row in rows.items() if after[name][key] != row]
        for name, rows in before.items()
    }
    total = sum(map(len, before.values()))
    changed = sum(map(len, added.values())) + sum(map(len, updated.values()))
    assert changed == pytest.approx(total * 0.02 + 4, rel=0.1)
    assert sum(map(len, updated.values())) < 0.25 * changed
    assert len(added["files"]) == 4 and added["logs"] and added["ticket_replies"]
    assert min(updated["tickets"]) > max(before["tickets"]) - 250
    for file_id in added["files"]:
        row = after["files"][file_id]
        path = built.path / "uploads" / "clients" / str(row[-1]) / row[1]
        assert path.stat().st_size == row[6]


def test_counts_scale_linearly() -> None:
    one, ten = Plan.for_scale(1), Plan.for_scale(10)
    assert ten.logs == 10 * one.logs and ten.documents == 10 * one.documents
    assert Plan.for_scale(0.001).clients == 1
    with pytest.raises(ValueError):
        Plan.for_scale(0)
