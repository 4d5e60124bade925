"""RTP handling of one carrier call, sans-I/O: packets in, echo decision and digits out.

``MediaSession.on_packet(data)`` counts the packet, says whether to echo it (symmetric RTP:
the shell sends it back, unchanged, to the address it came from) and returns any RFC 4733
digit that has just started (``qa.rtp.DtmfReceiver``; only packets with the negotiated
telephone-event payload type are parsed, so voice stays on the fast path).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from qa.errors import ParseError
from qa.rtp import DtmfReceiver, RtpPacket


@dataclass
class MediaSession:
    echo: bool = True
    dtmf_pt: int | None = None
    packets_in: int = 0
    packets_out: int = 0
    bytes_in: int = 0
    stopped: bool = False
    digits: list[str] = field(default_factory=list)
    _receiver: DtmfReceiver | None = None

    def __post_init__(self) -> None:
        if self.dtmf_pt is not None:
            self._receiver = DtmfReceiver(self.dtmf_pt)

    def on_packet(self, data: bytes) -> tuple[bool, str | None]:
        """Account for one datagram; return (echo it?, new digit or None)."""
        self.packets_in += 1
        self.bytes_in += len(data)
        digit = None
        if self._receiver is not None and len(data) >= 16 and (data[1] & 0x7F) == self.dtmf_pt:
            try:
                digit = self._receiver.feed(RtpPacket.parse(data))
            except ParseError:
                digit = None
            if digit is not None:
                self.digits.append(digit)
        send = self.echo and not self.stopped
        if send:
            self.packets_out += 1
        return send, digit
