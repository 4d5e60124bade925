"""The records the capture layer hands to the analysis engine, and its errors.

Kept apart from the readers so every capture module (and the engine) can import them
without cycles.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from qa.errors import BadInput, VoipqaError


class PcapError(BadInput):
    """The file cannot be read as a capture at all: one line naming the file (exit 2)."""

    def __init__(self, path: object, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path = path
        self.reason = reason


class CaptureUnavailable(VoipqaError):
    """Live capture cannot run here (no dumpcap/tcpdump, no permission, bad interface).

    The caller marks capture off for the run and goes on.
    """


@dataclass(slots=True)
class Payload:
    """One transport payload seen on the wire.

    UDP: the datagram payload (after IP reassembly), one per datagram.
    TCP / SCTP / WS: ONE complete SIP message, framed (RFC 3261 §18.3, RFC 4168,
    RFC 7118); ``frame`` is the 1-based number of the frame that completed it.
    """

    frame: int
    time: float
    src: str
    sport: int
    dst: str
    dport: int
    transport: str  # 'udp' | 'tcp' | 'sctp' | 'ws'
    data: bytes
    ip_version: int


@dataclass(slots=True)
class CaptureProblem:
    """Something wrong with the capture or its packets; iteration goes on.

    ``rule`` is a stable identifier such as ``pcap.truncated`` or ``ip.frag.overlap``.
    """

    frame: int
    time: float
    rule: str
    reason: str
    severity: str = "warning"


@dataclass
class CaptureStats:
    """Counters filled while a capture is read (one pass)."""

    packets: int = 0
    bytes: int = 0
    first_time: float | None = None
    last_time: float | None = None
    linktypes: dict[int, int] = field(default_factory=dict)
    non_ip: int = 0
    ip_fragments: int = 0
    ip_fragments_reassembled: int = 0
    udp_datagrams: int = 0
    tcp_segments: int = 0
    tcp_streams: int = 0
    tcp_retransmissions: int = 0
    tcp_messages: int = 0
    sctp_messages: int = 0
    ws_messages: int = 0
    problems: int = 0

    @property
    def duration(self) -> float:
        """Capture time from the first to the last frame, in seconds."""
        if self.first_time is None or self.last_time is None:
            return 0.0
        return self.last_time - self.first_time
