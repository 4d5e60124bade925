"""SIP over UDP: one datagram is one message."""

from __future__ import annotations

import asyncio
import logging

from qa.transport.base import Addr, Handler

log = logging.getLogger(__name__)


class _Proto(asyncio.DatagramProtocol):
    def __init__(self, owner: "UdpEndpoint") -> None:
        self.owner = owner

    def datagram_received(self, data: bytes, addr: tuple) -> None:
        if not data.strip(b"\r\n"):          # keep-alive CRLFs (RFC 5626)
            return
        try:
            self.owner.handler(data, (addr[0], addr[1]), self.owner)
        except Exception:                      # a handler bug must not kill the socket
            log.exception("udp handler failed for a datagram from %s:%s", addr[0], addr[1])

    def error_received(self, exc: Exception) -> None:   # ICMP port unreachable etc.
        log.debug("udp error: %s", exc)


class UdpEndpoint:
    name = "udp"

    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self._transport: asyncio.DatagramTransport | None = None
        self.local: Addr = ("", 0)

    @classmethod
    async def open(cls, host: str, port: int, handler: Handler) -> "UdpEndpoint":
        ep = cls(handler)
        loop = asyncio.get_running_loop()
        transport, _ = await loop.create_datagram_endpoint(lambda: _Proto(ep), local_addr=(host, port))
        ep._transport = transport
        sock = transport.get_extra_info("sockname")
        ep.local = (sock[0], sock[1])
        return ep

    def send(self, data: bytes, addr: Addr) -> None:
        if self._transport is not None and not self._transport.is_closing():
            self._transport.sendto(data, addr)

    async def close(self) -> None:
        if self._transport is not None:
            self._transport.close()
            self._transport = None
