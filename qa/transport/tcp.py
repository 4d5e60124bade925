"""SIP over TCP: messages framed by Content-Length (``qa.sip.StreamFramer``).

Responses and requests to a peer go over the connection with that peer if there is one
(the connection the request came in on, RFC 3261 §18.2.2); otherwise a new connection to
the address is opened and the message queued until it is up.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Callable

from qa.transport.base import Addr, Handler

log = logging.getLogger(__name__)


def _default_framer() -> Any:
    from qa.sip import StreamFramer
    return StreamFramer()


def _feed(framer: Any, data: bytes) -> list[bytes]:
    """Push bytes into the framer; the whole messages it now has."""
    return framer.feed(data)


class _Conn(asyncio.Protocol):
    def __init__(self, owner: "TcpEndpoint", peer: Addr | None = None) -> None:
        self.owner = owner
        self.peer: Addr | None = peer
        self.transport: asyncio.Transport | None = None
        self.framer = owner.framer_factory()
        self.pending: list[bytes] = []

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        if self.peer is None:
            addr = transport.get_extra_info("peername")
            self.peer = (addr[0], addr[1])
        self.owner._conns[self.peer] = self
        for data in self.pending:
            self.transport.write(data)
        self.pending.clear()

    def data_received(self, data: bytes) -> None:
        try:
            messages = _feed(self.framer, data)
        except Exception as exc:   # ParseError: the stream is out of sync, drop it
            log.info("tcp %s:%s unframeable stream (%s); closing", *self.peer, exc)  # type: ignore[misc]
            if self.transport is not None:
                self.transport.close()
            return
        for msg in messages:
            if not msg.strip(b"\r\n"):
                continue
            try:
                self.owner.handler(msg, self.peer, self.owner)  # type: ignore[arg-type]
            except Exception:
                log.exception("tcp handler failed for a message from %s", self.peer)

    def connection_lost(self, exc: Exception | None) -> None:
        if self.peer is not None and self.owner._conns.get(self.peer) is self:
            del self.owner._conns[self.peer]


class TcpEndpoint:
    name = "tcp"

    def __init__(self, handler: Handler, framer_factory: Callable[[], Any] | None = None) -> None:
        self.handler = handler
        self.framer_factory = framer_factory or _default_framer
        self._server: asyncio.base_events.Server | None = None
        self._conns: dict[Addr, _Conn] = {}
        self._connecting: dict[Addr, _Conn] = {}
        self._tasks: set[asyncio.Task] = set()
        self.local: Addr = ("", 0)

    @classmethod
    async def open(cls, host: str, port: int, handler: Handler,
                   framer_factory: Callable[[], Any] | None = None) -> "TcpEndpoint":
        ep = cls(handler, framer_factory)
        loop = asyncio.get_running_loop()
        ep._server = await loop.create_server(lambda: _Conn(ep), host, port, reuse_address=True)
        sock = ep._server.sockets[0].getsockname()
        ep.local = (sock[0], sock[1])
        return ep

    def send(self, data: bytes, addr: Addr) -> None:
        conn = self._conns.get(addr)
        if conn is not None and conn.transport is not None and not conn.transport.is_closing():
            conn.transport.write(data)
            return
        pending = self._connecting.get(addr)
        if pending is not None:
            pending.pending.append(data)
            return
        conn = _Conn(self, addr)
        conn.pending.append(data)
        self._connecting[addr] = conn
        task = asyncio.get_running_loop().create_task(self._connect(conn, addr))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _connect(self, conn: _Conn, addr: Addr) -> None:
        loop = asyncio.get_running_loop()
        try:
            await asyncio.wait_for(loop.create_connection(lambda: conn, addr[0], addr[1]), 5.0)
        except (OSError, asyncio.TimeoutError) as exc:
            log.info("tcp connect to %s:%s failed: %s", addr[0], addr[1], exc)
        finally:
            self._connecting.pop(addr, None)

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None
        for conn in list(self._conns.values()):
            if conn.transport is not None:
                conn.transport.close()
        self._conns.clear()
        for task in list(self._tasks):
            task.cancel()
