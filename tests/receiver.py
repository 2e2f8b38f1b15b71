"""A small HTTP receiver on 127.0.0.1 for what flowsafe sends out: apprise ``json://``
notifications and dead-man's-switch pings. Paths under ``/hang`` that end in ``/start``
are accepted and never answered (until the receiver stops), to test flowsafe's timeouts."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Receiver:
    """What arrived: (method, path, body) in order."""

    port: int
    requests: list[tuple[str, str, str]] = field(default_factory=list)
    release: threading.Event = field(default_factory=threading.Event)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def json_url(self, path: str) -> str:
        return f"json://127.0.0.1:{self.port}{path}"

    def to(self, prefix: str) -> list[tuple[str, str, str]]:
        return [r for r in self.requests if r[1].startswith(prefix)]

    def notifications(self, prefix: str = "/hook") -> list[dict[str, Any]]:
        return [json.loads(body) for _, _, body in self.to(prefix)]


@contextmanager
def receiver() -> Iterator[Receiver]:
    """Run the receiver until the block ends."""
    box: list[Receiver] = []

    class Handler(BaseHTTPRequestHandler):
        def _answer(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length).decode("utf-8", "replace")
            box[0].requests.append((self.command, self.path, body))
            if self.path.startswith("/hang") and self.path.endswith("/start"):
                box[0].release.wait(60)
                return
            self.send_response(200)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"OK")

        do_GET = do_POST = _answer

        def log_message(self, format: str, *args: object) -> None:
            """Quiet."""

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    box.append(Receiver(server.server_address[1]))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield box[0]
    finally:
        box[0].release.set()
        server.shutdown()
        server.server_close()
        thread.join(10)
