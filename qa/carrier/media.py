"""RTP of one carrier call, sans-I/O: packets in -> echo decision and digits out; packets to send.

- ``MediaSession.on_packet(data, source)`` counts the packet (and its payload type), says
  whether to echo it (``echo`` mode: symmetric RTP, the shell sends it back unchanged to the
  address it came from) and returns the DTMF digits it completed:
  RFC 4733 events on the negotiated telephone-event payload type (``qa.rtp.DtmfReceiver``:
  end bit, retransmitted end packets and duplicates give one digit) and in-band tones in
  G.711 payloads (PCMU/PCMA, decoded and fed in arrival order to the Goertzel detector of
  ``qa.rtp.dtmf_tones``) when the route collects DTMF.
- ``silence`` / ``tone`` modes generate RTP (RFC 3550 §5.1: one SSRC, sequence +1 and
  timestamp + one frame per packet, marker on the first): ``start()`` at the 183 (early
  media) or the 200, then ``next_packet()`` every :data:`FRAME_S` (50 packets/s) returns the
  packet and where to send it: the offer's address until the first packet arrives, then
  the address packets come from (latching, like an SBC behind NAT would).
- ``stopped`` (``rtp_stop_after_s``) silences both echo and generation; counting goes on.

**RFC 4733 vs in-band for the same press**: a sender may signal a press both ways
(RFC 4733 §2.6 asks it not to, some do). RFC 4733 takes precedence for the time it covers:
an in-band press whose onset lies within an event (from :data:`GUARD_SAMPLES` before its
start to :data:`GUARD_SAMPLES` after its start + duration, in audio samples received) is
not counted; and an event that starts within :data:`GUARD_SAMPLES` of the onset of an
in-band press already counted with the same digit is that press (counted once, as in-band:
its detection came first).
"""

from __future__ import annotations

import math
import random
from array import array
from collections import deque
from dataclasses import dataclass, field

from qa.errors import ParseError
from qa.rtp import DtmfEvent, DtmfReceiver, RtpPacket, alaw_decode, alaw_encode, ulaw_decode, ulaw_encode
from qa.rtp.dtmf_tones import InbandDigit, InbandDtmfDetector, dbm0_amplitude

__all__ = ["MediaSpec", "MediaSession", "HeardDigit", "FRAME_S", "GUARD_SAMPLES", "silence_payload",
           "tone_payload"]

Addr = tuple[str, int]

FRAME_S = 0.020                 #: packetisation time of generated RTP (RFC 3551 §4.5: 20 ms default)
GUARD_SAMPLES = 800             #: 100 ms at 8 kHz: how near an in-band press and an RFC 4733 event are "the same"
TONE_HZ = 1000.0
TONE_DBM0 = -10.0

_G711_DECODERS = {"PCMU": ulaw_decode, "PCMA": alaw_decode}
_G711_ENCODERS = {"PCMU": ulaw_encode, "PCMA": alaw_encode}
#: one 20 ms frame of silence per codec (payload of a generated packet)
_SILENCE: dict[str, bytes] = {
    "PCMU": b"\xff" * 160,          # G.711 μ-law of 0 (ITU-T G.711 table 2)
    "PCMA": b"\xd5" * 160,          # G.711 A-law of 0 (table 1)
    "G722": b"\xff" * 160,          # 64 kbit/s filler: smallest codes of both sub-bands (not bit-exact silence)
    "opus": b"\xf8\xff\xfe",        # RFC 6716: TOC config 31 (CELT FB 20 ms), a zero-energy frame
    "G729": b"\x00" * 20,           # two 10 ms frames (RFC 3551 §4.5.6)
}


def silence_payload(codec: str) -> bytes | None:
    """One 20 ms frame of silence for ``codec`` (None: the carrier cannot generate it)."""
    return _SILENCE.get(_canonical(codec))


def tone_payload(codec: str, sample_rate: int = 8000) -> bytes | None:
    """One 20 ms frame of a 1 kHz tone at -10 dBm0 for G.711 (a whole number of periods,
    so the same frame repeats seamlessly); other codecs get their silence frame."""
    name = _canonical(codec)
    encode = _G711_ENCODERS.get(name)
    if encode is None:
        return silence_payload(name)
    amp = dbm0_amplitude(TONE_DBM0)
    n = int(sample_rate * FRAME_S)
    samples = array("h", (int(round(amp * math.sin(2 * math.pi * TONE_HZ * i / sample_rate))) for i in range(n)))
    return encode(samples.tobytes())


def _canonical(codec: str) -> str:
    return {"pcmu": "PCMU", "pcma": "PCMA", "g722": "G722", "opus": "opus", "g729": "G729"}.get(
        codec.lower(), codec)


@dataclass(frozen=True)
class MediaSpec:
    """What the media endpoint of one call does (built by the UAS from route + SDP)."""

    mode: str = "echo"                      # echo | silence | tone | none (sends nothing: a fault)
    codec: str = "PCMU"                     # the negotiated audio codec (first in the answer)
    payload_type: int | None = 0            # its payload type in the answer
    clock_rate: int = 8000                  # its RTP clock rate (a=rtpmap)
    dtmf_pt: int | None = None              # telephone-event payload type, if negotiated
    inband: tuple[tuple[int, str], ...] = ()   # (PT, "PCMU"/"PCMA") to run the tone detector on
    remote: Addr | None = None              # the offer's c=/m= address

    @property
    def echo(self) -> bool:
        return self.mode == "echo"


@dataclass(frozen=True)
class HeardDigit:
    digit: str
    via: str                                # "rfc4733" | "inband"


@dataclass
class MediaSession:
    spec: MediaSpec = field(default_factory=MediaSpec)
    packets_in: int = 0
    packets_out: int = 0
    bytes_in: int = 0
    stopped: bool = False
    sending: bool = False
    remote: Addr | None = None
    ssrc: int = field(default_factory=lambda: random.getrandbits(32))
    digits: list[str] = field(default_factory=list)
    payload_types_in: set[int] = field(default_factory=set)
    payload_types_out: set[int] = field(default_factory=set)
    _receiver: DtmfReceiver | None = field(default=None, repr=False)
    _detector: InbandDtmfDetector | None = field(default=None, repr=False)
    _decoders: dict = field(default_factory=dict, repr=False)
    _windows: deque = field(default_factory=lambda: deque(maxlen=16), repr=False)
    _event_key: tuple[int, int] | None = field(default=None, repr=False)
    _last_inband: InbandDigit | None = field(default=None, repr=False)
    _seq: int = field(default_factory=lambda: random.getrandbits(16), repr=False)
    _ts: int = field(default_factory=lambda: random.getrandbits(32), repr=False)
    _payload: bytes | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        spec = self.spec
        self.remote = spec.remote
        if spec.dtmf_pt is not None:
            self._receiver = DtmfReceiver(spec.dtmf_pt)
        self._decoders = {pt: _G711_DECODERS[name] for pt, name in spec.inband if name in _G711_DECODERS}
        if self._decoders:
            self._detector = InbandDtmfDetector(sample_rate=8000)
        if spec.mode == "silence":
            self._payload = silence_payload(spec.codec)
        elif spec.mode == "tone":
            self._payload = tone_payload(spec.codec)

    # ------------------------------------------------------------------ receiving
    def on_packet(self, data: bytes, source: Addr | None = None) -> tuple[bool, list[HeardDigit]]:
        """Account for one datagram; return (echo it?, digits completed by it)."""
        self.packets_in += 1
        self.bytes_in += len(data)
        if source is not None:
            self.remote = source                    # latch: send where the peer sends from
        heard: list[HeardDigit] = []
        if len(data) >= 12 and data[0] >> 6 == 2:
            pt = data[1] & 0x7F
            self.payload_types_in.add(pt)
            if pt == self.spec.dtmf_pt and self._receiver is not None:
                heard = self._on_event(data)
            elif pt in self._decoders:
                heard = self._on_audio(data, pt)
        send = self.spec.echo and not self.stopped
        if send:
            self.packets_out += 1
            if len(data) >= 12:
                self.payload_types_out.add(data[1] & 0x7F)
        self.digits += [h.digit for h in heard]
        return send, heard

    def _position(self) -> int:
        return self._detector.samples_seen if self._detector is not None else 0

    def _on_event(self, data: bytes) -> list[HeardDigit]:
        try:
            packet = RtpPacket.parse(data)
            event = DtmfEvent.parse(packet.payload)
        except ParseError:
            return []
        digit = self._receiver.feed(packet)          # type: ignore[union-attr]
        pos = self._position()
        key = (packet.ssrc, packet.timestamp)
        if key != self._event_key and digit is not None:
            self._event_key = key
            self._windows.append([pos - GUARD_SAMPLES, pos + event.duration + GUARD_SAMPLES, pos])
        elif key == self._event_key and self._windows:
            window = self._windows[-1]
            window[1] = max(window[1], window[2] + event.duration + GUARD_SAMPLES)
        if digit is None:
            return []
        last = self._last_inband
        if last is not None and last.digit == digit and abs(pos - last.start) <= GUARD_SAMPLES:
            return []                                # the in-band press already counted
        return [HeardDigit(digit, "rfc4733")]

    def _on_audio(self, data: bytes, pt: int) -> list[HeardDigit]:
        try:
            payload = RtpPacket.parse(data).payload
        except ParseError:
            return []
        heard = []
        for found in self._detector.feed_detailed(self._decoders[pt](payload)):   # type: ignore[union-attr]
            if any(lo <= found.start <= hi for lo, hi, _ in self._windows):
                continue                             # RFC 4733 covers this time: it takes precedence
            self._last_inband = found
            heard.append(HeardDigit(found.digit, "inband"))
        return heard

    # ------------------------------------------------------------------ sending
    @property
    def generates(self) -> bool:
        """Whether this session sends RTP of its own (silence/tone with a known frame)."""
        return self._payload is not None and self.spec.payload_type is not None

    def start(self) -> None:
        """Begin generating (the 183 with SDP or the 200 was sent)."""
        if self.generates:
            self.sending = True

    def next_packet(self) -> tuple[bytes, Addr] | None:
        """The next 20 ms packet and its destination, or None when not sending."""
        if not self.sending or self.stopped or self.remote is None or self._payload is None:
            return None
        pt = self.spec.payload_type or 0
        packet = RtpPacket(marker=self.packets_out == 0, payload_type=pt, sequence_number=self._seq,
                           timestamp=self._ts, ssrc=self.ssrc, payload=self._payload)
        self._seq = (self._seq + 1) & 0xFFFF
        self._ts = (self._ts + max(1, int(self.spec.clock_rate * FRAME_S))) & 0xFFFFFFFF
        self.packets_out += 1
        self.payload_types_out.add(pt)
        return bytes(packet), self.remote
