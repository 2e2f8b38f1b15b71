"""flowsafe.restic against real restic: local repositories in tmp dirs and a SeaweedFS S3."""

from __future__ import annotations

import hashlib
import logging
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from flowsafe.errors import (
    ConfigError,
    FlowsafeError,
    LockedError,
    ToolError,
    ToolMissingError,
    VerificationError,
)
from flowsafe.execute import spawn
from flowsafe.restic import (
    MIN_VERSION,
    PartialBackupError,
    Progress,
    Repository,
    RepositoryMissingError,
    Restic,
    WrongPasswordError,
    parse_version,
)
from flowsafe.secret import write_private
from tests.s3 import S3Server

TREE = {"a.txt": b"alpha\n", "sub/b.txt": b"bravo\n" * 100, "sub/deep/c.bin": os.urandom(50_000)}


def _restic(root: Path, url: str, password: str = "correct horse") -> Restic:
    """A Restic for ``url`` whose password file and cache live below ``root``."""
    password_file = root / f"password-{hashlib.sha1(password.encode()).hexdigest()[:8]}"
    write_private(password_file, password + "\n")
    return Restic(Repository(url=url, password_file=password_file, cache_dir=root / "cache"))


def _make_tree(root: Path) -> Path:
    for name, data in TREE.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(data)
    return root


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> Restic:
    """One initialized local repository for the tests that only add snapshots to it."""
    root = tmp_path_factory.mktemp("shared")
    restic = _restic(root, str(root / "repo"))
    restic.init()
    return restic


@pytest.fixture(scope="module")
def tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _make_tree(tmp_path_factory.mktemp("tree"))


# --- version, init, opening -------------------------------------------------------


def test_version_gate(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    assert parse_version("restic 0.14.0 compiled with go1.19.8 on linux/amd64") == (0, 14, 0)
    assert parse_version("restic 0.17.3-dev (compiled manually)") == (0, 17, 3)
    restic = _restic(tmp_path, str(tmp_path / "repo"))
    assert restic.version() >= MIN_VERSION
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(ToolMissingError, match="apt-get install restic"):
        restic.exists()


def test_init_exists_and_no_second_init(tmp_path: Path) -> None:
    restic = _restic(tmp_path, str(tmp_path / "new" / "repo"))
    assert not restic.exists()
    restic.init()
    assert restic.exists()
    assert (tmp_path / "new" / "repo" / "config").is_file()
    with pytest.raises(ConfigError, match="already exists"):
        restic.init()


def test_wrong_or_missing_password(shared: Restic, tmp_path: Path) -> None:
    wrong = _restic(tmp_path, shared.repo.url, password="wrong")
    expected = rf"^wrong password for restic repository .*: check {wrong.repo.password_file}$"
    with pytest.raises(WrongPasswordError, match=expected):
        wrong.exists()
    with pytest.raises(ConfigError, match="wrong password"):
        wrong.snapshots()
    missing = Restic(Repository(url=shared.repo.url, password_file=tmp_path / "nope"))
    with pytest.raises(ConfigError, match=r"password file .*nope does not exist"):
        missing.exists()


def test_no_repository_at_local_url(tmp_path: Path) -> None:
    url = str(tmp_path / "missing-folder" / "repo")
    restic = _restic(tmp_path, url)
    assert not restic.exists()
    with pytest.raises(RepositoryMissingError) as caught:
        restic.snapshots()
    assert (
        str(caught.value) == f"no restic repository at {url}: run `flowsafe init` or check the URL"
    )
    assert "\n" not in str(caught.value)


def test_s3_missing_bucket_and_wrong_credentials(s3_server: S3Server, tmp_path: Path) -> None:
    url = s3_server.url("flowsafe-absent")
    restic = _restic(tmp_path, url)
    missing = Restic(
        Repository(restic.repo.url, restic.repo.password_file, s3_server.environment())
    )
    assert not missing.exists()
    denied = Restic(
        Repository(restic.repo.url, restic.repo.password_file, s3_server.environment("wrong"))
    )
    with pytest.raises(FlowsafeError) as caught:
        denied.exists()
    assert not isinstance(caught.value, ConfigError)
    assert f"cannot open restic repository {url}" in str(caught.value)
    assert "\n" not in str(caught.value)


# --- backup, snapshots, forget ----------------------------------------------------


def test_backup_progress_and_summary(shared: Restic, tree: Path, tmp_path: Path) -> None:
    seen: list[Progress] = []
    first = shared.backup([tree], tags=["site:bk"], host="h1", on_progress=seen.append)
    assert seen and all(0.0 <= p.percent_done <= 1.0 for p in seen)
    assert len(first.snapshot_id) == 64
    assert (first.files_new, first.files_changed, first.files_unmodified) == (3, 0, 0)
    assert first.total_files_processed == 3
    assert first.total_bytes_processed == sum(len(data) for data in TREE.values())
    assert first.data_added > 50_000 and first.duration > 0

    (tree / "a.txt").write_bytes(b"changed\n")
    (tree / "skip.tmp").write_bytes(b"excluded")
    try:
        second = shared.backup([tree], tags=["site:bk"], host="h1", excludes=["*.tmp"])
    finally:
        (tree / "a.txt").write_bytes(TREE["a.txt"])
        (tree / "skip.tmp").unlink()
    assert (second.files_new, second.files_changed, second.files_unmodified) == (0, 1, 2)
    assert second.data_added < first.data_added

    ids = [s.id for s in shared.snapshots(["site:bk"])]
    assert ids == [first.snapshot_id, second.snapshot_id]
    assert shared.dump(second.snapshot_id, str(tree / "sub" / "b.txt")) == TREE["sub/b.txt"]
    shared.restore(first.snapshot_id, tmp_path / "out", includes=[str(tree / "sub")])
    restored = tmp_path / "out" / tree.relative_to("/")
    assert (restored / "sub" / "deep" / "c.bin").read_bytes() == TREE["sub/deep/c.bin"]
    assert not (restored / "a.txt").exists()
    assert shared.raw_size() > 50_000


def test_unreadable_file_is_a_failure_that_names_the_snapshot(shared: Restic, tree: Path) -> None:
    # Reading /proc/self/mem at offset 0 fails (EIO) for every user, root included.
    with pytest.raises(PartialBackupError) as caught:
        shared.backup([tree, Path("/proc/self/mem")], tags=["site:partial"], host="h1")
    error = caught.value
    assert isinstance(error, ToolError) and error.code == 3
    assert error.unreadable == ["/proc/self/mem"]
    assert [s.id for s in shared.snapshots(["site:partial"])] == [error.snapshot_id]
    assert f"snapshot {error.snapshot_id[:8]} was written" in str(error)


def test_snapshots_filter_by_all_tags(shared: Restic, tree: Path) -> None:
    tag_sets = [["site:t1", "reason:nightly"], ["site:t1", "reason:manual"], ["site:t2"]]
    made = [shared.backup([tree], tags=tags, host="h2").snapshot_id for tags in tag_sets]
    site = shared.snapshots(["site:t1"])
    assert [s.id for s in site] == made[:2]
    assert site[0].time < site[1].time
    nightly = shared.snapshots(["site:t1", "reason:nightly"])
    assert [s.id for s in nightly] == made[:1]
    assert nightly[0].tag_value("reason") == "nightly"
    assert nightly[0].tag_value("missing") is None
    assert nightly[0].hostname == "h2" and nightly[0].paths == [str(tree)]
    assert nightly[0].short_id == made[0][:8]
    with pytest.raises(ConfigError, match="comma"):
        shared.snapshots(["a,b"])


def test_forget_treats_all_tagged_snapshots_as_one_group(shared: Restic, tree: Path) -> None:
    nightly = [shared.backup([tree], tags=["site:f", "n"], host="h3").snapshot_id for _ in "123"]
    manual = shared.backup([tree], tags=["site:f", "m"], host="h4").snapshot_id

    planned = shared.forget(tag_sets=[["site:f"]], keep={"last": 2, "daily": 0}, dry_run=True)
    assert sorted(planned.kept) == sorted([nightly[-1], manual])
    assert sorted(planned.removed) == sorted(nightly[:-1])
    assert len(shared.snapshots(["site:f"])) == 4
    either = shared.forget(tag_sets=[["site:f", "n"], ["site:f", "m"]], keep={"last": 1},
                           dry_run=True)  # several tag sets: one group of all they match
    assert either.kept == [manual] and sorted(either.removed) == sorted(nightly)

    done = shared.forget(tag_sets=[["site:f"]], keep={"last": 3}, dry_run=False)
    shared.prune()
    assert done.removed == [nightly[0]]
    assert {s.id for s in shared.snapshots(["site:f"])} == {*nightly[1:], manual}

    with pytest.raises(ConfigError, match="keeps nothing"):
        shared.forget(tag_sets=[["site:f"]], keep={"last": 0}, dry_run=True)
    with pytest.raises(ConfigError, match="bad retention policy"):
        shared.forget(tag_sets=[["site:f"]], keep={"hourly": 1}, dry_run=True)


# --- locks, check ---------------------------------------------------------------------


@pytest.fixture
def lock_holder(shared: Restic) -> Iterator[subprocess.Popen[bytes]]:
    """A live ``restic backup --stdin`` that holds a lock while it waits for input."""
    locks = Path(shared.repo.url) / "locks"
    env = {
        "RESTIC_REPOSITORY": shared.repo.url,
        "RESTIC_PASSWORD_FILE": str(shared.repo.password_file),
    }
    process = spawn(
        ["restic", "backup", "--stdin", "--stdin-filename", "held", "--tag", "site:lock"],
        env=env,
        stdin=subprocess.PIPE,
    )
    deadline = time.monotonic() + 10
    while not any(locks.iterdir()):
        assert process.poll() is None and time.monotonic() < deadline, "restic took no lock"
        time.sleep(0.05)
    yield process
    process.kill()
    process.wait()


def test_live_lock_is_reported_and_kept(
    shared: Restic, lock_holder: subprocess.Popen[bytes]
) -> None:
    with pytest.raises(LockedError, match=f"is locked by PID {lock_holder.pid} on "):
        shared.check()
    shared.unlock()  # only stale locks go
    with pytest.raises(LockedError):
        shared.forget(tag_sets=[["site:none"]], keep={"last": 1}, dry_run=False)
    assert lock_holder.stdin is not None
    lock_holder.stdin.write(b"held\n")
    lock_holder.stdin.close()
    assert lock_holder.wait(10) == 0
    shared.check()


def test_stale_lock_after_kill_9_is_removed_by_unlock(
    shared: Restic, lock_holder: subprocess.Popen[bytes]
) -> None:
    os.kill(lock_holder.pid, signal.SIGKILL)
    lock_holder.wait()
    with pytest.raises(LockedError):
        shared.check()
    shared.unlock()
    shared.check()


def test_check_finds_damaged_data(tmp_path: Path, tree: Path) -> None:
    restic = _restic(tmp_path, str(tmp_path / "repo"))
    restic.init()
    restic.backup([tree], tags=["site:damage"], host="h4")
    restic.check(read_data_subset="1/1")
    packs = sorted((tmp_path / "repo" / "data").rglob("*"), key=lambda p: p.stat().st_size)
    biggest = packs[-1]
    biggest.chmod(0o600)
    data = bytearray(biggest.read_bytes())
    data[100] ^= 0xFF
    biggest.write_bytes(bytes(data))
    with pytest.raises(VerificationError, match="restic check found problems in"):
        restic.check(read_data_subset="1/1")


# --- S3 -------------------------------------------------------------------------------


def test_s3_cycle(
    s3_server: S3Server, tree: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    local = _restic(tmp_path, s3_server.url("flowsafe-cycle"))
    restic = Restic(
        Repository(local.repo.url, local.repo.password_file, s3_server.environment(), tmp_path)
    )
    assert not restic.exists()
    restic.init()
    assert restic.exists()
    summary = restic.backup([tree], tags=["site:s3"], host="h5")
    assert summary.files_new == 3
    assert [s.id for s in restic.snapshots(["site:s3"])] == [summary.snapshot_id]
    restic.restore(summary.snapshot_id, tmp_path / "out")
    restored = tmp_path / "out" / tree.relative_to("/")
    assert {
        p.relative_to(restored).as_posix(): p.read_bytes()
        for p in restored.rglob("*")
        if p.is_file()
    } == TREE
    assert s3_server.secret_key not in caplog.text
    assert "correct horse" not in caplog.text
    assert any("run: restic" in r.getMessage() for r in caplog.records)
