"""``make install`` as a new admin runs it on a Debian 12 server, from a clone: the system
packages (already there on the test machine: nothing to install), flowsafe in its own
virtualenv (not editable, not into Debian's Python), the command linked, and the same
again on a second run. The prefix and the link folder are the Makefile's PREFIX and
BINDIR, pointed into a temp folder. Needs PyPI (pip builds flowsafe in an isolated
environment; installed libraries come from pip's cache)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _make_install(clone: Path, prefix: Path, bindir: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["make", "-C", str(clone), "install", f"PREFIX={prefix}",
                           f"BINDIR={bindir}"], capture_output=True, text=True, timeout=600,
                          check=False, env={**os.environ, "PIP_NO_INPUT": "1"})


@pytest.mark.network
def test_make_install_from_a_clone_is_idempotent(tmp_path: Path) -> None:
    clone = tmp_path / "flowsafe"
    subprocess.run(["git", "clone", "-q", str(ROOT), str(clone)], check=True, timeout=120)
    prefix, bindir = tmp_path / "opt" / "flowsafe", tmp_path / "bin"
    first = _make_install(clone, prefix, bindir)
    assert first.returncode == 0, first.stdout + first.stderr
    assert f"flowsafe installed in {prefix}; the command is {bindir}/flowsafe" in first.stdout
    link = bindir / "flowsafe"
    assert link.is_symlink() and link.resolve() == (prefix / "bin" / "flowsafe").resolve()
    helped = subprocess.run([str(link), "--help"], capture_output=True, text=True, timeout=60,
                            check=False)
    assert helped.returncode == 0 and "key" in helped.stdout and "backup" in helped.stdout
    where = subprocess.run([str(prefix / "bin" / "python"), "-c",
                            "import flowsafe, sys; from flowsafe.config import Config; "
                            "from flowsafe.keys.sheet import install_source; "
                            "print(flowsafe.__file__); print(install_source(Config()))"],
                           capture_output=True, text=True, timeout=60, check=True)
    module, source = where.stdout.splitlines()
    assert module.startswith(str(prefix))  # a copy in the virtualenv, not the clone
    assert source == str(ROOT)  # the sheet names where this clone came from

    python = (prefix / "bin" / "python").resolve()
    stamp = python.stat().st_ino
    again = _make_install(clone, prefix, bindir)
    assert again.returncode == 0, again.stdout + again.stderr
    assert (prefix / "bin" / "python").resolve().stat().st_ino == stamp  # venv kept
    assert link.resolve() == (prefix / "bin" / "flowsafe").resolve()
    assert subprocess.run([str(link), "--help"], capture_output=True, timeout=60,
                          check=False).returncode == 0


def test_install_deps_refuses_an_unknown_profile() -> None:
    done = subprocess.run([str(ROOT / "scripts" / "install-deps.sh"), "server"],
                          capture_output=True, text=True, timeout=30, check=False)
    assert done.returncode == 2 and "usage:" in done.stderr
