"""A TLS server on 127.0.0.1 for tests: completes (or refuses) handshakes with one context
until closed; what the client offered and the server allowed decide the outcome."""

from __future__ import annotations

import socket
import ssl
import threading


class TlsServer:
    """Accepts TLS connections on 127.0.0.1 (``port``, any free one by default) with ``ctx``."""

    def __init__(self, ctx: ssl.SSLContext, port: int = 0) -> None:
        self.ctx = ctx
        self.sock = socket.create_server(("127.0.0.1", port))
        self.sock.settimeout(0.1)
        self.port = self.sock.getsockname()[1]
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while not self.stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            conn.settimeout(2)
            try:
                with self.ctx.wrap_socket(conn, server_side=True):
                    pass
            except (OSError, ssl.SSLError):
                pass
            finally:
                conn.close()

    def close(self) -> None:
        self.stop.set()
        self.thread.join(timeout=5)
        self.sock.close()
