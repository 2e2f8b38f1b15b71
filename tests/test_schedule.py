"""``flowsafe schedule install|show|remove`` through the CLI, into a stand-in root
(FLOWSAFE_SCHEDULE_ROOT): systemd units checked by ``systemd-analyze verify`` and enabled
with ``systemctl --root``, the cron fallback and its logrotate file checked by
``logrotate -d``; a second install replaces, bad input and non-root runs are refused."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.cli import flowsafe

UNITS = ("flowsafe-backup.service", "flowsafe-backup.timer", "flowsafe-drill.service",
         "flowsafe-drill.timer")
FLOWSAFE = Path(sys.executable).parent / "flowsafe"


@pytest.fixture
def root(tmp_path: Path) -> Path:
    return tmp_path / "root"


@pytest.fixture
def config(tmp_path: Path) -> Path:
    """A valid config whose state folder lies below /etc (ProtectSystem=full's reach)."""
    path = tmp_path / "etc" / "flowsafe.toml"
    path.parent.mkdir()
    path.write_text('state_dir = "/etc/flowsafe-test/state"\n')
    return path


def schedule(root: Path, config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return flowsafe(config, "schedule", *args, env={"FLOWSAFE_SCHEDULE_ROOT": str(root)})


def systemd_root(root: Path) -> Path:
    (root / "run" / "systemd" / "system").mkdir(parents=True)
    return root / "etc" / "systemd" / "system"


def values(path: Path, key: str) -> list[str]:
    return [line.split("=", 1)[1] for line in path.read_text().splitlines()
            if line.startswith(f"{key}=")]


def test_systemd_units(root: Path, config: Path) -> None:
    units = systemd_root(root)
    done = schedule(root, config, "install", "--at", "01:45")
    assert done.returncode == 0, done.stderr
    assert "Installed the systemd schedule" in done.stdout
    for name in UNITS:
        text = (units / name).read_text()
        assert text.startswith("# Written by `flowsafe schedule install`")
        assert f"(config {config})" in text  # units name the config they were written for
    backup = units / "flowsafe-backup.service"
    assert values(backup, "ExecStart") == [f"{FLOWSAFE} --config {config} backup --reason nightly",
                                           f"{FLOWSAFE} --config {config} prune"]
    assert values(backup, "Type") == ["oneshot"] and values(backup, "Nice") == ["10"]
    assert values(backup, "IOSchedulingClass") == ["idle"]
    assert values(backup, "ProtectSystem") == ["full"]
    assert values(backup, "ReadWritePaths") == ["-/etc/flowsafe-test/state"]
    for restriction in ("PrivateNetwork", "IPAddressDeny", "RestrictAddressFamilies"):
        assert not values(backup, restriction)  # repositories may be remote
    timer = units / "flowsafe-backup.timer"
    assert values(timer, "OnCalendar") == ["*-*-* 01:45:00"]
    assert values(timer, "Persistent") == ["true"] and values(timer, "RandomizedDelaySec")
    assert values(units / "flowsafe-drill.timer", "OnCalendar") == ["Sun *-*-* 03:45:00"]
    assert "flowsafe-backup.service" in values(units / "flowsafe-drill.service", "After")[0]
    wants = units / "timers.target.wants"
    assert sorted(p.name for p in wants.iterdir()) == ["flowsafe-backup.timer",
                                                       "flowsafe-drill.timer"]
    verify = subprocess.run(["systemd-analyze", "verify", *(str(units / n) for n in UNITS)],
                            capture_output=True, text=True, check=False)
    assert verify.returncode == 0 and verify.stderr == "", verify.stderr

    shown = json.loads(schedule(root, config, "show", "--json").stdout)
    assert shown["kind"] == "systemd" and shown["config"] == str(config)
    assert [job["name"] for job in shown["jobs"]] == ["backup", "drill"]
    assert all(re.search(r"\d\d:\d\d:00", job["next_run"]) for job in shown["jobs"]), shown
    assert "journalctl" in shown["output"]
    human = schedule(root, config, "show").stdout
    assert f"runs {FLOWSAFE} --config {config} prune" in human and "next run" in human

    again = schedule(root, config, "install", "--at", "04:00", "--drill", "off")
    assert again.returncode == 0, again.stderr
    assert sorted(p.name for p in units.iterdir() if p.is_file()) == list(UNITS[:2])
    assert [p.name for p in wants.iterdir()] == ["flowsafe-backup.timer"]
    assert values(units / "flowsafe-backup.timer", "OnCalendar") == ["*-*-* 04:00:00"]

    removed = schedule(root, config, "remove")
    assert removed.returncode == 0 and removed.stdout.count("removed ") == 2
    assert not any(p.is_file() for p in units.rglob("*")) and not wants.exists()
    assert "No flowsafe schedule is installed" in schedule(root, config, "show").stdout
    assert "nothing removed" in schedule(root, config, "remove").stdout


def _cron_lines(root: Path) -> list[list[str]]:
    text = (root / "etc" / "cron.d" / "flowsafe").read_text()
    return [line.split(" ", 6) for line in text.splitlines()
            if line and not line.startswith("#") and "=" not in line.split(" ")[0]]


def test_cron_without_systemd(root: Path, config: Path, tmp_path: Path) -> None:
    done = schedule(root, config, "install", "--drill", "daily", "--prune", "off", "--at",
                    "23:30")
    assert done.returncode == 0, done.stderr
    cron = root / "etc" / "cron.d" / "flowsafe"
    text = cron.read_text()
    assert "PATH=/usr/local/sbin:/usr/local/bin:" in text and "SHELL=/bin/sh" in text
    assert cron.stat().st_mode & 0o777 == 0o644
    (backup, drill) = _cron_lines(root)
    assert backup[:6] == ["30", "23", "*", "*", "*", "root"]
    assert drill[:6] == ["30", "1", "*", "*", "*", "root"]  # two hours later, after midnight
    assert f"{FLOWSAFE} --config {config} backup --reason nightly" in backup[6]
    assert " prune" not in backup[6] and f"{FLOWSAFE} --config {config} drill" in drill[6]
    assert ">>/var/log/flowsafe/flowsafe.log 2>&1" in backup[6]
    assert (root / "var" / "log" / "flowsafe").stat().st_mode & 0o777 == 0o700
    rotate = root / "etc" / "logrotate.d" / "flowsafe"
    checked = subprocess.run(["logrotate", "-d", "-s", str(tmp_path / "state"), str(rotate)],
                             capture_output=True, text=True, check=False)
    assert checked.returncode == 0 and "error" not in checked.stderr.lower(), checked.stderr
    assert "/var/log/flowsafe/flowsafe.log" in checked.stderr

    shown = json.loads(schedule(root, config, "show", "--json").stdout)
    assert shown["kind"] == "cron" and [j["name"] for j in shown["jobs"]] == ["backup", "drill"]
    assert shown["jobs"][0]["next_run"].endswith("23:30")

    assert schedule(root, config, "install").returncode == 0  # replaces, never duplicates
    assert [line[:2] for line in _cron_lines(root)] == [["30", "2"], ["30", "4"]]
    systemd_root(root)  # the machine now boots systemd: the units replace the cron file
    switched = schedule(root, config, "install")
    assert switched.returncode == 0 and "removed" in switched.stdout
    assert not cron.exists() and not rotate.exists()


@pytest.mark.parametrize("at", ["25:00", "7", "12:60", "ab:cd", "1:2:3"])
def test_invalid_time(root: Path, config: Path, at: str) -> None:
    done = schedule(root, config, "install", "--at", at)
    assert done.returncode == 2
    assert f"--at takes a time of day as HH:MM (24-hour), e.g. 02:30; '{at}' is not one" in \
        done.stderr
    assert not root.exists()


def test_bad_choices_and_missing_config(root: Path, config: Path, tmp_path: Path) -> None:
    done = schedule(root, config, "install", "--drill", "hourly")
    assert done.returncode == 2 and "--drill takes weekly, daily, off" in done.stderr
    done = schedule(root, config, "install", "--prune", "weekly")
    assert done.returncode == 2 and "--prune takes daily, off" in done.stderr
    done = schedule(root, tmp_path / "none.toml", "install")
    assert done.returncode == 2 and "no flowsafe config at" in done.stderr
    assert not root.exists()


def test_foreign_unit_is_left_alone(root: Path, config: Path) -> None:
    units = systemd_root(root)
    units.mkdir(parents=True)
    mine = units / "flowsafe-backup.service"
    mine.write_text("[Service]\nExecStart=/bin/true\n")
    done = schedule(root, config, "install")
    assert done.returncode == 2 and "was not written by flowsafe: move it away" in done.stderr
    assert mine.read_text() == "[Service]\nExecStart=/bin/true\n"
    assert schedule(root, config, "remove").returncode == 0 and mine.exists()


def test_install_without_root(root: Path, config: Path) -> None:
    # The interpreter lives under /root (mode 0700), so the child drops to nobody only
    # once flowsafe is imported, then runs the real entry point.
    script = ("import os, sys\nimport flowsafe.cli\nos.setgroups([])\nos.setgid(65534)\n"
              "os.setuid(65534)\nsys.argv = ['flowsafe', *sys.argv[1:]]\nflowsafe.cli.main()\n")
    for action in ("install", "remove"):
        done = subprocess.run(
            [sys.executable, "-c", script, "--config", str(config), "schedule", action],
            capture_output=True, text=True, check=False,
            env={**os.environ, "FLOWSAFE_SCHEDULE_ROOT": str(root)})
        assert done.returncode == 2, done.stderr
        assert (f"schedule {action} writes system files (/etc/systemd/system or /etc/cron.d): "
                f"run it as root, e.g. sudo flowsafe schedule {action}") in done.stderr
    assert not root.exists()
