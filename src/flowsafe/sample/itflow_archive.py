"""ITFlow's own backup files of a sample site, written by PHP the way ITFlow writes them
(``itflow_backup.php``: mysqli, ZipArchive, WinZip AES-256), for the tests and the demo."""

from __future__ import annotations

from pathlib import Path

from flowsafe import execute
from flowsafe.secret import Secret

SCRIPT = Path(__file__).with_name("itflow_backup.php")
FORMS = ("full", "database", "master_key", "plain", "sql2025", "legacy")


def write_itflow_backup(site: Path, socket: str, form: str, out_dir: Path,
                        master_key: Secret | None = None) -> Path:
    """Write one backup of the site in ``site`` (its config.php names the database, reached
    over ``socket``) in ``form`` (see ``FORMS``) into ``out_dir``; returns the file.

    26.08 forms use ``$config_backup_key`` and, like ITFlow, append one to config.php
    first when it has none. ``master_key`` is needed for ``master_key`` and travels on
    stdin.
    """
    if form not in FORMS:
        raise ValueError(f"unknown ITFlow backup form {form!r}: one of {', '.join(FORMS)}")
    out_dir.mkdir(parents=True, exist_ok=True)
    secret = master_key.reveal().encode() + b"\n" if master_key else b""
    done = execute.run(["php", "-d", f"mysqli.default_socket={socket}", str(SCRIPT), str(site),
                        form, str(out_dir)], input=secret)
    return Path(done.stdout.decode().strip())
