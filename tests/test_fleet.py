"""Several sites in one config through the CLI: backup, prune, drill and status act on
every site, one site's failure does not stop the others, ``log`` lists the runs, and the
output stays plain, whole lines when nobody watches (cron mail, the journal)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from typer.main import get_command

from flowsafe.cli import app
from flowsafe.mariadb.connection import connect
from flowsafe.mariadb.instance import PrivateServer
from flowsafe.sample import build_site
from tests.cli import flowsafe

BOX = set("│┃━─┏┓┗┛┡┩╇╭╮╰╯")


@pytest.fixture(scope="module")
def two_sites(mariadb_server: PrivateServer, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two sites with the same files (one seed) and databases, in one config and one
    repository; the first has lost an upload its files table references."""
    tmp = tmp_path_factory.mktemp("fleet")
    config = tmp / "etc" / "flowsafe.toml"
    for name in ("itflow", "other"):
        sample = build_site(tmp / "www" / name, mariadb_server.target(),
                            database=f"fleet_{name}", seed=9, scale=0.2)
        args = ["init", "--site", str(sample.path), "--name", name, "--db-socket",
                mariadb_server.socket]
        if name == "itflow":
            args += ["--repo", str(tmp / "repo"), "--state-dir", str(tmp / "state")]
        done = flowsafe(config, *args)
        assert done.returncode == 0, done.stderr
    return config


def _missing_upload(config: Path, server: PrivateServer) -> str:
    """Delete one referenced upload of site itflow; its path below uploads/."""
    with connect(server.target("fleet_itflow")) as conn, conn.cursor() as cur:
        cur.execute("SELECT file_client_id, file_reference_name FROM files LIMIT 1")
        row = cur.fetchone()
    assert row is not None
    relative = f"clients/{row[0]}/{row[1]}"
    (config.parent.parent / "www" / "itflow" / "uploads" / relative).unlink()
    return relative


def test_every_site_by_default(two_sites: Path, mariadb_server: PrivateServer) -> None:
    config = two_sites
    missing = _missing_upload(config, mariadb_server)
    done = flowsafe(config, "backup", "--json")
    assert done.returncode == 0, done.stderr
    first, second = json.loads(done.stdout)
    assert [first["site"], second["site"]] == ["itflow", "other"]
    assert second["bytes_added"] < first["bytes_added"] / 3  # one repository deduplicates
    assert len(json.loads(flowsafe(config, "snapshots", "--json").stdout)) == 2

    plain = {"COLUMNS": "80"}  # and stdout is a pipe: plain, unwrapped lines
    status = flowsafe(config, "status", env=plain)
    assert status.returncode == 0, status.stdout + status.stderr
    assert [line.split()[:3] for line in status.stdout.splitlines()
            if line.split()[1:2] == ["site"]] == [
        ["WARNING", "site", "itflow"], ["WARNING", "site", "other"]]  # never drilled
    assert status.stdout.count("never drilled: run `flowsafe drill --site") == 2
    pruned = flowsafe(config, "prune", "--dry-run")
    assert pruned.returncode == 0 and pruned.stdout.count("would remove 0 snapshots") == 2

    drilled = flowsafe(config, "drill", env=plain)
    assert drilled.returncode == 3, drilled.stdout + drilled.stderr  # only checks failed
    assert "Drill of site other" in drilled.stdout and "RESTORABLE" in drilled.stdout
    assert not BOX & set(drilled.stdout), drilled.stdout
    line = next(line for line in drilled.stdout.splitlines() if missing in line)
    assert re.match(r"uploads referenced\s+failed\s+1 of \d+ missing: clients/", line), line
    assert drilled.stderr.strip().splitlines() == [
        "error: site itflow: drill found a problem: uploads referenced"]

    runs = json.loads(flowsafe(config, "log", "--json").stdout)
    assert [(r["site"], r["action"], r["ok"]) for r in runs] == [
        ("itflow", "backup", True), ("other", "backup", True),
        ("itflow", "drill", False), ("other", "drill", True)]
    assert runs[2]["error"] == "checks failed: uploads referenced"
    one = json.loads(flowsafe(config, "log", "--site", "other", "--limit", "1", "--json").stdout)
    assert [(r["site"], r["action"]) for r in one] == [("other", "drill")]
    table = flowsafe(config, "log", env=plain).stdout.splitlines()
    assert table[0].split() == ["Time", "Site", "Action", "Reason", "Result", "Duration",
                                "Snapshot", "Error"]
    assert any(line.endswith("checks failed: uploads referenced") for line in table)
    unknown = flowsafe(config, "log", "--site", "nosuch")
    assert unknown.returncode == 2 and "no site named 'nosuch'" in unknown.stderr


def test_one_site_failing_does_not_stop_the_others(two_sites: Path) -> None:
    config = two_sites
    www = config.parent.parent / "www"
    before = len(json.loads(flowsafe(config, "snapshots", "--json").stdout))
    shutil.move(www / "other", www / "other.away")
    try:
        done = flowsafe(config, "backup", env={"COLUMNS": "80"})
        assert done.returncode == 1
        assert "Backup of 'itflow' done" in done.stdout
        assert done.stderr.splitlines() == [
            f"error: site other: no ITFlow install at {www / 'other'}: the folder does not "
            "exist; point --site at the ITFlow folder"]
        status = flowsafe(config, "status")
        assert status.returncode == 1 and "WARNING site itflow" in status.stdout, status
        assert status.stderr.startswith("error: site other: no ITFlow install at")
        assert flowsafe(config, "backup", "--site", "itflow").returncode == 0
        only = flowsafe(config, "backup", "--site", "other")
        assert only.returncode == 2  # one site: its own exit code (a configuration error)
    finally:
        shutil.move(www / "other.away", www / "other")
    assert len(json.loads(flowsafe(config, "snapshots", "--json").stdout)) == before + 2
    failed = [r for r in json.loads(flowsafe(config, "log", "--json").stdout) if not r["ok"]]
    assert [(r["site"], r["action"]) for r in failed][-2:] == [("other", "backup")] * 2


def test_global_options_after_the_command(two_sites: Path, tmp_path: Path) -> None:
    argv = [sys.executable, "-m", "flowsafe"]
    done = subprocess.run([*argv, "snapshots", "--site", "itflow", "--config", str(two_sites),
                           "-v"], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    assert "DEBUG flowsafe.execute: run: restic" in done.stderr
    missing = tmp_path / "none.toml"
    done = subprocess.run([*argv, "status", f"--config={missing}"], capture_output=True,
                          text=True, check=False)
    assert done.returncode == 2 and f"no flowsafe config at {missing}" in done.stderr


def _commands() -> list[tuple[list[str], list[str]]]:
    """(command words, option names) of every command."""
    found = []
    pending: list[tuple[list[str], object]] = [([], get_command(app))]
    while pending:
        words, command = pending.pop()
        subs = getattr(command, "commands", None)
        if subs:
            pending += [([*words, name], sub) for name, sub in subs.items()]
            continue
        names = [opt for param in getattr(command, "params", [])
                 for opt in [*param.opts, *param.secondary_opts] if opt.startswith("-")]
        found.append((words, names))
    return found


HELP_ALL = """
import sys
from flowsafe.cli import main
for words in {words!r}:
    print("=== " + " ".join(words))
    try:
        main([*words, "--help"])
    except SystemExit as code:
        assert code.code in (0, None), (words, code.code)
"""


def test_help_keeps_option_names_whole_at_80_columns() -> None:
    commands = _commands()
    assert len(commands) >= 20
    script = HELP_ALL.format(words=[words for words, _ in commands])
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          check=False, env={**os.environ, "COLUMNS": "80"})
    assert done.returncode == 0, done.stderr
    pages = dict(re.findall(r"^=== (.*)\n((?:(?!=== ).*\n)*)", done.stdout, re.M))
    for words, names in commands:
        page = pages[" ".join(words)]
        assert "…" not in page and not BOX & set(page), page
        assert max(map(len, page.splitlines())) <= 80, page
        for name in names:
            assert re.search(rf"(^|[\s,/]){re.escape(name)}([\s,=/]|$)", page, re.M), \
                (words, name, page)
