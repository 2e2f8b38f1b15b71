"""The run records: the last attempt per action (status) and the bounded, append-only,
0600 history (log); a nested recording of the same run records once."""

from __future__ import annotations

from pathlib import Path

import pytest

from flowsafe import runs
from flowsafe.errors import FlowsafeError


def test_history_records_ok_errors_and_skips(tmp_path: Path) -> None:
    with runs.recording(tmp_path, "itflow", "backup", "nightly") as entry:
        entry.snapshot = "abc"
        with runs.recording(tmp_path, "itflow", "backup") as inner:  # the same run
            assert inner is entry
    with pytest.raises(FlowsafeError), runs.recording(tmp_path, "other", "prune"):
        raise FlowsafeError("repository locked")
    with runs.recording(tmp_path, "itflow", "update") as skipped:
        skipped.skip = True
    with runs.recording(tmp_path, "itflow", "drill") as drilled:
        drilled.error = "checks failed: row counts"
    found = runs.history(tmp_path)
    assert [(r.site, r.action, r.ok, r.snapshot, r.error) for r in found] == [
        ("itflow", "backup", True, "abc", None),
        ("other", "prune", False, None, "repository locked"),
        ("itflow", "drill", False, None, "checks failed: row counts")]
    assert found[0].reason == "nightly" and found[0].duration >= 0
    assert [r.action for r in runs.history(tmp_path, "itflow", limit=1)] == ["drill"]
    assert runs.read(tmp_path, "other")["prune"]["error"] == "repository locked"
    history = tmp_path / "runs" / runs.HISTORY_FILE
    assert history.stat().st_mode & 0o777 == 0o600
    assert (tmp_path / "runs" / "other.json").stat().st_mode & 0o777 == 0o600


def test_history_is_bounded_and_survives_a_torn_line(tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(runs, "HISTORY_MAX_BYTES", 4000)
    monkeypatch.setattr(runs, "HISTORY_KEEP", 5)
    for number in range(40):
        with runs.recording(tmp_path, "itflow", "backup", f"night {number}"):
            pass
    history = tmp_path / "runs" / runs.HISTORY_FILE
    assert history.stat().st_size <= 4000 + 300
    kept = runs.history(tmp_path)
    assert 5 <= len(kept) < 40 and kept[-1].reason == "night 39"
    with history.open("a") as file:
        file.write('{"time": "2026-')  # a crash in the middle of a line
    assert runs.history(tmp_path)[-1].reason == "night 39"
    with runs.recording(tmp_path, "itflow", "backup", "after the crash"):
        pass
    assert runs.history(tmp_path)[-1].reason == "after the crash"
