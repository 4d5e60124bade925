"""RTP payload for DTMF digits (RFC 4733): the event payload and a receiver."""

from __future__ import annotations

import struct
from collections import deque
from dataclasses import dataclass

from qa.errors import ParseError
from qa.rtp.packet import RtpPacket

__all__ = ["EVENT_DIGITS", "DtmfEvent", "DtmfReceiver"]

#: RFC 4733 §3.2 table 7: DTMF event codes 0-15 -> digit (0-9, *, #, A-D).
EVENT_DIGITS = "0123456789*#ABCD"
_EVENT = struct.Struct("!BBH")
_MAX_DURATION = 0xFFFF


@dataclass(slots=True)
class DtmfEvent:
    """The 4-octet named-event payload (RFC 4733 §2.3).

    ``event`` 0-255, ``end`` the E bit, ``volume`` 0-63 (-dBm0, §2.3.4), ``duration``
    in timestamp units (§2.3.5). The R bit is sent as zero and ignored (§2.3.3).
    """

    event: int
    end: bool = False
    volume: int = 10
    duration: int = 0

    @classmethod
    def parse(cls, data: bytes) -> DtmfEvent:
        """Parse the first event of a telephone-event payload."""
        if len(data) < 4:
            raise ParseError(f"telephone-event payload of {len(data)} octets, need 4", len(data))
        event, flags, duration = _EVENT.unpack_from(data)
        return cls(event, bool(flags & 0x80), flags & 0x3F, duration)

    def __bytes__(self) -> bytes:
        return _EVENT.pack(self.event & 0xFF, (0x80 if self.end else 0) | (self.volume & 0x3F),
                           self.duration & 0xFFFF)

    @property
    def digit(self) -> str | None:
        """The DTMF digit for events 0-15, else ``None``."""
        return EVENT_DIGITS[self.event] if self.event < 16 else None

    @classmethod
    def for_digit(cls, digit: str, **kwargs: object) -> DtmfEvent:
        """Event for one of ``0-9 * # A-D`` (case-insensitive)."""
        return cls(EVENT_DIGITS.index(digit.upper()), **kwargs)  # type: ignore[arg-type]


class DtmfReceiver:
    """Collect DTMF digits from telephone-event packets (RFC 4733 §2.5.2).

    Events are keyed on (SSRC, RTP timestamp) (§2.5.1.3): the first packet of a new
    event yields its digit; later updates, end-bit retransmissions (§2.5.1.4) and
    duplicates yield nothing. An event whose end packets were all lost still counted
    when it started. Segments of a long event (§2.5.1.5: previous segment reached
    the maximum duration, same event, no end) are not new digits.
    ``payload_type`` filters packets; ``None`` treats every fed packet as an event.
    """

    def __init__(self, payload_type: int | None = None, *, history: int = 32) -> None:
        self.payload_type = payload_type
        self.digits = ""
        self.events: list[DtmfEvent] = []  # first packet of each counted event
        self._seen: deque[tuple[int, int]] = deque(maxlen=history)
        self._last: tuple[int, int, DtmfEvent] | None = None  # ssrc, timestamp, latest update

    def feed(self, packet: RtpPacket) -> str | None:
        """Process one RTP packet; return the digit if it starts a new event."""
        if self.payload_type is not None and packet.payload_type != self.payload_type:
            return None
        try:
            event = DtmfEvent.parse(packet.payload)
        except ParseError:
            return None
        key = (packet.ssrc, packet.timestamp)
        last = self._last
        if last is not None and (last[0], last[1]) == key:
            self._last = (key[0], key[1], event)
            return None
        if key in self._seen:
            return None
        self._seen.append(key)
        self._last = (key[0], key[1], event)
        if (last is not None and last[0] == packet.ssrc and not last[2].end
                and last[2].event == event.event and last[2].duration >= _MAX_DURATION):
            return None  # next segment of a long-duration event
        self.events.append(event)
        digit = event.digit
        if digit is not None:
            self.digits += digit
        return digit
