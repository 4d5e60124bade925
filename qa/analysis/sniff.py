"""Deciding, on the first bytes, what a UDP datagram is: SIP, RTP/RTCP or neither.

Media is recognised first by the address an SDP announced (the engine asks
:class:`qa.analysis.rtp.MediaRegistry`); what is left is SIP when its first line is a
SIP start line (RFC 3261 §7.1/§7.2, however malformed the method or the spacing) or
when it travels to or from a port SIP was seen on (5060/5061 by default, RFC 3261 §19.1.2),
unless it is a keep-alive (CRLF, RFC 5626 §3.5.1) or STUN (RFC 5389 §6: first two bits 0).
"""

from __future__ import annotations

__all__ = ["SipPorts", "start_line_is_sip", "is_keepalive"]

_VERSION = b"SIP/2.0"
_MAX_LINE = 1 << 16


def start_line_is_sip(data: bytes) -> bool:
    """A status line, or a first line that ends in ``SIP/2.0`` (a request line)."""
    if data[:8] == b"SIP/2.0 ":
        return True
    end = data.find(b"\n", 0, _MAX_LINE)
    if end < 0:
        return False
    if end and data[end - 1] == 13:  # CR
        end -= 1
    return end > 7 and data[end - 8] == 32 and data[end - 7:end].upper() == _VERSION


def is_keepalive(data: bytes) -> bool:
    """CRLF keep-alives (RFC 5626 §3.5.1) and empty datagrams."""
    return len(data) <= 8 and not data.strip(b"\r\n")


class SipPorts:
    """Ports SIP was seen on; datagrams to or from them are read as SIP (bounded set)."""

    def __init__(self, initial: tuple[int, ...] = (5060, 5061), limit: int = 1024) -> None:
        self.ports: set[int] = set(initial)
        self.limit = limit

    def add(self, port: int) -> None:
        if port not in self.ports and len(self.ports) < self.limit:
            self.ports.add(port)

    def __contains__(self, port: int) -> bool:
        return port in self.ports

    def classify(self, data: bytes, sport: int, dport: int) -> bool:
        """True when ``data`` (not already known as media) should be read as SIP."""
        if not data or is_keepalive(data):
            return False
        if start_line_is_sip(data):
            return True
        if sport not in self.ports and dport not in self.ports:
            return False
        b0 = data[0]
        return b0 >> 6 != 0 and b0 >> 6 != 2  # not STUN, not RTP-shaped
