"""Per-stream RTP statistics (RFC 3550) and RFC 4733 digits, on raw header bytes.

One :class:`RtpStream` per (source, destination, SSRC). The hot path reads the 12-octet
fixed header with one ``struct`` call; only telephone-event packets are fully parsed
(:class:`qa.rtp.RtpPacket`) to feed :class:`qa.rtp.DtmfReceiver`.

* Loss: RFC 3550 §6.4.1 / Appendix A.1, A.3 — expected = extended highest sequence
  number − base + 1, lost = expected − received (never below 0). A jump of more than
  ``MAX_DROPOUT`` restarts the count (A.1's resynchronisation) and is a sequence error.
* Sequence errors: duplicates, late (reordered) packets and restarts.
* Jitter: RFC 3550 §6.4.1 / A.8, J += (|D| − J)/16 in timestamp units of the payload
  type's clock rate (from ``a=rtpmap`` or RFC 3551's static table), reported in ms.
  Telephone-event and comfort-noise packets are left out (their timestamps do not
  advance with the clock, RFC 4733 §2.3.1).
"""

from __future__ import annotations

import struct
from collections import Counter
from dataclasses import dataclass, field

from qa.analysis.mos import mos
from qa.errors import ParseError
from qa.rtp import DtmfReceiver, RtpPacket

__all__ = ["MediaTarget", "MediaRegistry", "RtpStream", "StreamSummary", "looks_like_rtp",
           "is_rtcp"]

_HEADER = struct.Struct("!BBHII")
MAX_DROPOUT = 3000
MAX_MISORDER = 100
_SEQ_MOD = 1 << 16
_TS_MOD = 1 << 32
_NOT_AUDIO = frozenset({"TELEPHONE-EVENT", "CN"})


def looks_like_rtp(data: bytes) -> bool:
    """Version 2 and at least a fixed header (RFC 3550 §5.1)."""
    return len(data) >= 12 and data[0] >> 6 == 2


def is_rtcp(data: bytes) -> bool:
    """RTCP packet types 200-204 (RFC 3550 §12.1) sit where RTP has M+PT."""
    return len(data) >= 8 and 200 <= data[1] <= 204


@dataclass(slots=True)
class MediaTarget:
    """Where SDP said a party receives media (RFC 3264 §5): the receiver's formats.

    ``direction`` is ``"forward"`` for media towards the callee (address from an SDP the
    callee sent) and ``"backward"`` for media towards the caller.
    """

    call_id: str
    direction: str
    rtpmap: dict[int, tuple[str, int]]  # pt -> (encoding, clock rate)
    ptime: int | None = None

    @property
    def event_pt(self) -> int | None:
        return next((pt for pt, (enc, _) in self.rtpmap.items()
                     if enc.upper() == "TELEPHONE-EVENT"), None)


class MediaRegistry:
    """Media addresses learned from SDP, keyed on (address, port).

    ``lookup`` finds the receiver of a packet by its destination; failing that,
    ``sender`` finds it by its source, since with symmetric RTP (RFC 4961) a party sends
    from the address it receives on: the packet then flows the opposite way.
    """

    def __init__(self) -> None:
        self.receivers: dict[tuple[str, int], MediaTarget] = {}
        self.senders: dict[tuple[str, int], MediaTarget] = {}

    def learn(self, address: str, port: int, target: MediaTarget) -> tuple[str, int]:
        """Remember ``target``; returns the key to :meth:`forget` it by."""
        key = (address, port)
        self.receivers[key] = target
        back = "forward" if target.direction == "backward" else "backward"
        self.senders[key] = MediaTarget(target.call_id, back, target.rtpmap, target.ptime)
        return key

    def lookup(self, dst: str, dport: int, src: str, sport: int) -> MediaTarget | None:
        """The target of a packet from ``src:sport`` to ``dst:dport``, or ``None``."""
        return self.receivers.get((dst, dport)) or self.senders.get((src, sport))

    def forget(self, call_id: str, keys: list[tuple[str, int]]) -> None:
        """Drop ``keys`` if they still belong to ``call_id`` (the call ended)."""
        for table in (self.receivers, self.senders):
            for key in keys:
                target = table.get(key)
                if target is not None and target.call_id == call_id:
                    del table[key]

    def __len__(self) -> int:
        return len(self.receivers)


@dataclass(slots=True)
class StreamSummary:
    """What a finished stream amounts to (the JSON of ``pcap calls``)."""

    src: str
    dst: str
    ssrc: int
    direction: str
    codec: str | None
    payload_types: dict[int, int]
    unexpected_payload_types: list[int]
    packets: int
    expected: int
    lost: int
    loss_percent: float
    sequence_errors: int
    jitter_ms: float
    max_jitter_ms: float
    mos: float | None
    dtmf: str
    first_time: float
    last_time: float
    early_payload_types: dict[int, int] = field(default_factory=dict)  # PT -> packets before the 2xx


@dataclass(slots=True)
class RtpStream:
    """Counters of one RTP stream, fed one packet at a time in capture order."""

    src: str
    dst: str
    ssrc: int
    target: MediaTarget
    first_frame: int = 0
    first_time: float = 0.0
    last_time: float = 0.0
    packets: int = 0
    base_seq: int = -1
    max_seq: int = 0
    cycles: int = 0
    received: int = 0
    lost_before: int = 0      # lost in segments before a restart
    expected_before: int = 0
    seq_errors: int = 0
    jitter: float = 0.0       # timestamp units, RFC 3550 A.8
    max_jitter_ms: float = 0.0
    last_arrival: float = -1.0
    last_ts: int = 0
    clock: int = 8000         # clock rate of the last audio packet
    pt_counts: Counter[int] = field(default_factory=Counter)
    early_pt_counts: Counter[int] = field(default_factory=Counter)
    dtmf: DtmfReceiver | None = None

    def feed(self, frame: int, time: float, data: bytes, early: bool = False) -> None:
        """Account one packet (``data`` is at least a 12-octet version-2 header); ``early``
        when it was sent before the call's first 2xx (early media, RFC 3960)."""
        b0, b1, seq, ts, _ = _HEADER.unpack_from(data)
        pt = b1 & 0x7F
        if not self.packets:
            self.first_frame, self.first_time = frame, time
        self.packets += 1
        self.last_time = time
        self.pt_counts[pt] += 1
        if early:
            self.early_pt_counts[pt] += 1
        self._sequence(seq)
        mapping = self.target.rtpmap.get(pt)
        encoding = mapping[0].upper() if mapping else ""
        if encoding == "TELEPHONE-EVENT":
            self._dtmf(data)
        elif encoding not in _NOT_AUDIO:
            self._jitter(time, ts, mapping[1] if mapping else 8000)

    def _sequence(self, seq: int) -> None:
        """RFC 3550 A.1, simplified: no probation, restart on a large jump."""
        if self.base_seq < 0:
            self.base_seq = self.max_seq = seq
            self.received = 1
            return
        delta = (seq - self.max_seq) % _SEQ_MOD
        if delta == 0:
            self.seq_errors += 1  # duplicate
        elif delta < MAX_DROPOUT:
            if seq < self.max_seq:
                self.cycles += _SEQ_MOD
            self.max_seq = seq
        elif delta <= _SEQ_MOD - MAX_MISORDER:
            self.seq_errors += 1  # restart (A.1 resync): close the segment
            self.expected_before += self.expected
            self.lost_before += max(self.expected - self.received, 0)
            self.base_seq = self.max_seq = seq
            self.cycles = 0
            self.received = 0
        else:
            self.seq_errors += 1  # late, reordered
        self.received += 1

    def _jitter(self, time: float, ts: int, clock: int) -> None:
        """RFC 3550 A.8: interarrival jitter in timestamp units."""
        arrival = time * clock
        if self.last_arrival >= 0:
            dts = (ts - self.last_ts) % _TS_MOD
            if dts >= _TS_MOD // 2:
                dts -= _TS_MOD
            d = (arrival - self.last_arrival) - dts
            self.jitter += (abs(d) - self.jitter) / 16.0
            ms = self.jitter * 1000.0 / clock
            if ms > self.max_jitter_ms:
                self.max_jitter_ms = ms
        self.last_arrival = arrival
        self.last_ts = ts
        self.clock = clock

    def _dtmf(self, data: bytes) -> None:
        if self.dtmf is None:
            self.dtmf = DtmfReceiver()
        try:
            self.dtmf.feed(RtpPacket.parse(data))
        except ParseError:
            pass

    # -- results ---------------------------------------------------------------------
    @property
    def expected(self) -> int:
        """Packets expected in the current segment (RFC 3550 A.3)."""
        if self.base_seq < 0:
            return 0
        return self.cycles + self.max_seq - self.base_seq + 1

    @property
    def total_expected(self) -> int:
        return self.expected_before + self.expected

    @property
    def lost(self) -> int:
        return self.lost_before + max(self.expected - self.received, 0)

    @property
    def loss_percent(self) -> float:
        expected = self.total_expected
        return 100.0 * self.lost / expected if expected else 0.0

    @property
    def main_pt(self) -> int | None:
        """The most used payload type that is audio (not events / comfort noise)."""
        rtpmap = self.target.rtpmap
        for pt, _ in self.pt_counts.most_common():
            if rtpmap.get(pt, ("?", 0))[0].upper() not in _NOT_AUDIO:
                return pt
        return None

    @property
    def codec(self) -> str | None:
        pt = self.main_pt
        if pt is None:
            return None
        mapping = self.target.rtpmap.get(pt)
        return mapping[0] if mapping else f"PT{pt}"

    @property
    def jitter_ms(self) -> float:
        return self.jitter * 1000.0 / self.clock

    @property
    def unexpected_payload_types(self) -> list[int]:
        """Payload types on the wire the receiver's SDP did not offer (RFC 3264 §5.1)."""
        return sorted(pt for pt in self.pt_counts if pt not in self.target.rtpmap)

    def summary(self) -> StreamSummary:
        audio = self.main_pt is not None
        return StreamSummary(
            src=self.src, dst=self.dst, ssrc=self.ssrc, direction=self.target.direction,
            codec=self.codec, payload_types=dict(self.pt_counts),
            unexpected_payload_types=self.unexpected_payload_types, packets=self.packets,
            expected=self.total_expected, lost=self.lost,
            loss_percent=round(self.loss_percent, 3), sequence_errors=self.seq_errors,
            jitter_ms=round(self.jitter_ms, 3), max_jitter_ms=round(self.max_jitter_ms, 3),
            mos=mos(self.loss_percent, self.jitter_ms, self.codec, self.target.ptime or 20)
            if audio else None,
            dtmf=self.dtmf.digits if self.dtmf else "",
            first_time=self.first_time, last_time=self.last_time,
            early_payload_types=dict(self.early_pt_counts))
