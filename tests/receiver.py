"""A local HTTP receiver for alert tests: records every POST (path, JSON body) and answers
with a chosen status, on 127.0.0.1 and a free port."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Receiver:
    url: str
    status: int = 200
    posts: list[tuple[str, object]] = field(default_factory=list)

    def bodies(self, path: str) -> list[object]:
        return [body for p, body in self.posts if p == path]


@contextmanager
def http_receiver(status: int = 200) -> Iterator[Receiver]:
    state = Receiver(url="", status=status)

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - http.server's name
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length)
            try:
                body: object = json.loads(raw)
            except ValueError:
                body = raw.decode(errors="replace")
            state.posts.append((self.path, body))
            self.send_response(state.status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
