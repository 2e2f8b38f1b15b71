"""Site locks: exclusive, named holder, crash detection after kill -9."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from flowsafe.errors import LockedError
from flowsafe.lock import site_lock

HOLD = """
import sys, time
from pathlib import Path
from flowsafe.lock import site_lock
with site_lock(Path(sys.argv[1]), "s", "backup"):
    print("held", flush=True)
    time.sleep(60)
"""


def _holder(state: Path) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(state)], stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "held"
    return proc


def test_second_holder_refused_with_holder_named(tmp_path: Path) -> None:
    proc = _holder(tmp_path)
    try:
        expected = rf"another flowsafe backup of site 's' is running \(pid {proc.pid}"
        with pytest.raises(LockedError, match=expected), site_lock(tmp_path, "s", "restore"):
            pass
    finally:
        proc.kill()
        proc.wait()


def test_clean_exit_is_not_a_crash(tmp_path: Path) -> None:
    with site_lock(tmp_path, "s", "backup") as held:
        assert not held.previous_crashed
    with site_lock(tmp_path, "s", "backup") as held:
        assert not held.previous_crashed


def test_kill_9_releases_and_is_detected(tmp_path: Path) -> None:
    proc = _holder(tmp_path)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    deadline = time.monotonic() + 5
    while True:
        try:
            with site_lock(tmp_path, "s", "backup") as held:
                assert held.previous_crashed
                assert held.previous["pid"] == proc.pid
            break
        except LockedError:
            assert time.monotonic() < deadline
            time.sleep(0.05)
