"""Notifications, the dead-man's switch, Prometheus metrics and the status they feed,
through the real CLI: a local receiver on 127.0.0.1 takes apprise's ``json://`` messages
and the pings; real MariaDB, real restic."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from flowsafe.mariadb.instance import PrivateServer
from flowsafe.sample import SampleSite, build_site
from flowsafe.secret import write_private
from tests.cli import SiteUnderTest, edit_config
from tests.receiver import Receiver, receiver
from tests.s3 import free_ports

SECRET = "s3cr3t-Pa55"


@pytest.fixture(scope="module")
def sample(mariadb_server: PrivateServer, tmp_path_factory: pytest.TempPathFactory
           ) -> SampleSite:
    root = tmp_path_factory.mktemp("www-notify")
    return build_site(root / "itflow", mariadb_server.target(), database="itflow_notify",
                      seed=11, scale=0.3)


@pytest.fixture
def site(sample: SampleSite, mariadb_server: PrivateServer, tmp_path: Path) -> SiteUnderTest:
    made = SiteUnderTest(sample, mariadb_server, tmp_path)
    made.ok("init", "--site", str(sample.path), "--name", "itflow", "--repo",
            str(tmp_path / "repo"), "--state-dir", str(tmp_path / "state"), "--db-socket",
            mariadb_server.socket)
    return made


@pytest.fixture
def hook() -> Iterator[Receiver]:
    with receiver() as running:
        yield running


def _tell(site: SiteUnderTest, urls: list[str], on: list[str], ping: str | None = None,
          textfile: Path | None = None) -> None:
    after = {}
    if ping:
        after["copy_to = []"] = f'ping_url = "{ping}"'
    if textfile:
        after["max_drill_age_days = 8.0"] = f'textfile = "{textfile}"'
    edit_config(site.config, after=after,
                append=f"[notify]\nurls = {json.dumps(urls)}\non = {json.dumps(on)}\n")


def _status(site: SiteUnderTest) -> dict[str, object]:
    done = site.run("status", "--json")
    assert done.returncode in (0, 1), done.stderr
    row: dict[str, object] = json.loads(done.stdout)[0]
    return row


def _metrics(path: Path) -> dict[str, list[tuple[dict[str, str], float]]]:
    text = path.read_text()
    promtool = shutil.which("promtool")
    if promtool:
        checked = subprocess.run([promtool, "check", "metrics"], input=text, text=True,
                                 capture_output=True, check=False)
        assert checked.returncode == 0, checked.stdout + checked.stderr
    found: dict[str, list[tuple[dict[str, str], float]]] = {}
    for family in text_string_to_metric_families(text):
        assert family.type == "gauge" and family.documentation, family.name
        assert family.name.startswith("flowsafe_")
        found[family.name] = [(s.labels, s.value) for s in family.samples]
    return found


def test_malformed_apprise_url_is_a_config_error(site: SiteUnderTest) -> None:
    _tell(site, ["json://127.0.0.1:9/hook", f"nonsense://admin:{SECRET}@host"], ["failure"])
    done = site.run("backup")
    assert done.returncode == 2
    assert "notify.urls.1" in done.stderr and "apprise" in done.stderr
    assert SECRET not in done.stderr + done.stdout
    edit_config(site.config, replace={"nonsense://": "json://", '["failure"]': '["sometimes"]'})
    done = site.run("status")
    assert done.returncode == 2 and "notify.on.0" in done.stderr
    edit_config(site.config, replace={'["sometimes"]': '["failure"]',
                                      "copy_to = []": 'copy_to = []\nping_url = "ftp://x"'})
    done = site.run("status")
    assert done.returncode == 2 and "sites.itflow.ping_url" in done.stderr


def test_success_and_failure_reach_the_receiver(site: SiteUnderTest, hook: Receiver) -> None:
    metrics = site.tmp / "node" / "flowsafe.prom"
    _tell(site, [hook.json_url("/hook")], ["failure", "success"], hook.url("/ping/abc"),
          metrics)
    done = site.run("backup")
    assert done.returncode == 0, done.stderr
    snapshot = site.snapshots()[0]["short_id"]
    assert [(m, p) for m, p, _ in hook.to("/ping")] == [("POST", "/ping/abc/start"),
                                                          ("POST", "/ping/abc")]
    assert f"snapshot {snapshot}" in hook.to("/ping/abc")[-1][2]
    [message] = hook.notifications()
    assert "backup of 'itflow' ok" in message["title"]
    assert "backup of site 'itflow' ok" in message["message"]

    found = _metrics(metrics)
    assert metrics.stat().st_mode & 0o777 == 0o644
    assert [p.name for p in metrics.parent.iterdir()] == ["flowsafe.prom"]  # no temp left
    assert found["flowsafe_backup_last_attempt_success"] == [({"site": "itflow"}, 1.0)]
    assert found["flowsafe_snapshots"] == [({"site": "itflow", "repository": "default"}, 1.0)]
    assert found["flowsafe_backup_added_bytes"][0][1] > 0
    assert found["flowsafe_backup_duration_seconds"][0][1] > 0
    assert found["flowsafe_repository_size_bytes"][0][1] > 0
    assert found["flowsafe_key_escrowed"] == [({"site": "itflow"}, 0.0)]
    newest = found["flowsafe_backup_last_success_timestamp_seconds"][0][1]
    assert abs(newest - time.time()) < 600

    password = site.config.parent / "default.password"
    good = password.read_text()
    write_private(password, "not the password\n")
    failed = site.run("backup")
    write_private(password, good)
    assert failed.returncode == 2  # what it is without notifications: unchanged
    assert hook.to("/ping")[-1][1] == "/ping/abc/fail"
    assert "wrong password" in hook.to("/ping")[-1][2]
    message = hook.notifications()[-1]
    assert "backup of 'itflow' FAILED" in message["title"]
    body = message["message"].splitlines()
    assert body[0].startswith("backup of site 'itflow' FAILED: wrong password")
    assert body[1] == "Next: flowsafe status --site itflow, then flowsafe backup --site itflow"
    assert _metrics(metrics)["flowsafe_backup_last_attempt_success"] == [
        ({"site": "itflow"}, 0.0)]

    asked = site.tmp / "asked.prom"
    assert site.run("status", "--prometheus", str(asked)).returncode == 0
    assert _metrics(asked)["flowsafe_site_ok"] == [({"site": "itflow"}, 1.0)]


def test_undeliverable_notification_and_hanging_ping(site: SiteUnderTest,
                                                     hook: Receiver) -> None:
    closed = free_ports(1)[0]
    _tell(site, [f"json://127.0.0.1:{closed}/hook"], ["failure", "success"],
          hook.url("/hang/check"))
    started = time.monotonic()
    done = site.run("backup")
    took = time.monotonic() - started
    assert done.returncode == 0, done.stderr
    assert 10 <= took < 45, took  # the start ping hangs: cut after 10 s
    assert "start ping to 127.0.0.1" in done.stderr and "did not answer within 10 s" in done.stderr
    assert f"notification to json://127.0.0.1:{closed}/hook failed" in done.stderr
    assert [p for _, p, _ in hook.to("/hang")] == ["/hang/check/start", "/hang/check"]
    status = site.run("status")
    assert status.returncode == 0, status.stdout
    assert "last notification failure" in status.stdout
    failure = _status(site)["last_notification_failure"]
    assert isinstance(failure, dict)
    assert failure["reason"] in ("success", "ping success") and not failure["ok"]


def test_stale_and_drill_failure_notify(site: SiteUnderTest, hook: Receiver) -> None:
    _tell(site, [hook.json_url("/hook")], ["failure", "stale", "drill-failure"])
    site.ok("backup")
    assert hook.notifications() == []  # success is not in `on`
    row = _status(site)
    assert row["state"] == "warning" and row["ok"] is True
    assert any("never drilled" in w for w in row["warnings"])  # type: ignore[attr-defined]

    edit_config(site.config, replace={"max_backup_age_hours = 26.0":
                                      "max_backup_age_hours = 1e-06"})
    stale = site.run("status")
    assert stale.returncode == 1
    assert site.run("status").returncode == 1
    [message] = hook.notifications()  # once, not at every status
    assert "status of 'itflow' needs attention" in message["title"]
    assert "old (limit" in message["message"] and "Next: flowsafe status" in message["message"]

    wrong = site.tmp / "wrong.key"
    write_private(wrong, "A" * 16 + "\n")
    drilled = site.run("drill", "--key-file", str(wrong))
    assert drilled.returncode == 3
    message = hook.notifications()[-1]
    assert "drill of 'itflow' drill FAILED" in message["title"]
    assert "checks failed: credentials decrypt" in message["message"]


def _restic(site: SiteUnderTest, *args: str, data: bytes = b"") -> str:
    env = {**os.environ, "RESTIC_REPOSITORY": str(site.tmp / "repo"),
           "RESTIC_PASSWORD_FILE": str(site.config.parent / "default.password"), "TZ": "UTC"}
    return subprocess.run(["restic", *args], input=data, env=env, capture_output=True,
                          check=True).stdout.decode()


def _old_record(site: SiteUnderTest, days: int, kind: str, tags: str) -> None:
    """A record as flowsafe writes it, dated ``days`` ago (restic backup --time)."""
    when = (datetime.now(UTC) - timedelta(days=days)).strftime("%Y-%m-%d %H:%M:%S")
    _restic(site, "backup", "--stdin", "--stdin-filename", f"{kind}-itflow.json", "--time",
            when, "--tag", f"{kind},site:itflow,{tags}", data=b'{"checks": []}')


def test_old_credentials_warn_and_old_run_records_age_out(site: SiteUnderTest) -> None:
    site.ok("backup")
    _old_record(site, 40, "flowsafe-drill", "drilled:00000000,result:ok,credentials:ok")
    _old_record(site, 1, "flowsafe-drill", "drilled:00000000,result:ok,credentials:skipped")
    done = site.run("status")
    assert done.returncode == 0, done.stdout  # a drill passed a day ago
    assert "WARNING" in done.stdout
    row = _status(site)
    warnings = " ".join(row["warnings"])  # type: ignore[arg-type]
    assert "credentials last decrypted in a drill 40 days ago (more than 31)" in warnings
    assert str(row["credentials_decrypted"]).startswith(
        (datetime.now(UTC) - timedelta(days=40)).strftime("%Y-%m-%d"))

    _old_record(site, 500, "flowsafe-run", "command:backup,result:ok,seconds:1.0")
    assert len(json.loads(_restic(site, "snapshots", "--json", "--tag", "flowsafe-run"))) == 2
    site.ok("prune")
    kept = json.loads(_restic(site, "snapshots", "--json", "--tag", "flowsafe-run"))
    assert len(kept) == 1  # the 500-day-old record is gone, this backup's stays
    assert datetime.now(UTC) - datetime.fromisoformat(kept[0]["time"]) < timedelta(hours=1)
    assert len(site.snapshots()) == 1  # the backup itself is untouched
