"""Thin asyncio SIP transports (DESIGN §10): bytes in from a peer, bytes out to a peer.

Every endpoint delivers ``handler(data, peer, transport)`` with one whole SIP message in
``data`` (UDP: one datagram; TCP: framed by ``qa.sip.StreamFramer``), ``peer`` the
``(host, port)`` it came from, and ``transport`` the endpoint itself (``.name`` is "udp" or
"tcp"), and sends with ``transport.send(data, peer)``. TLS comes later.
"""

from qa.transport.base import Addr, Handler, Transport
from qa.transport.tcp import TcpEndpoint
from qa.transport.udp import UdpEndpoint

__all__ = ["Addr", "Handler", "Transport", "UdpEndpoint", "TcpEndpoint", "open_endpoints"]


async def open_endpoints(host: str, port: int, handler: Handler,
                         transports: list[str] | tuple[str, ...] = ("udp", "tcp")) -> list[Transport]:
    """Open one endpoint per transport name on host:port; close the opened ones on failure."""
    opened: list[Transport] = []
    try:
        for name in transports:
            if name == "udp":
                opened.append(await UdpEndpoint.open(host, port, handler))
            elif name == "tcp":
                opened.append(await TcpEndpoint.open(host, port, handler))
            else:
                raise ValueError(f"unknown transport {name!r} (udp, tcp)")
    except BaseException:
        for ep in opened:
            await ep.close()
        raise
    return opened
