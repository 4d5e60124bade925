"""qa.rtp: RTP packets (RFC 3550), DTMF events (RFC 4733), G.711."""

from __future__ import annotations

import struct

import pytest

from qa.errors import ParseError
from qa.rtp import (
    EVENT_DIGITS, DtmfEvent, DtmfReceiver, RtpPacket, alaw_decode, alaw_encode, tone,
    ulaw_decode, ulaw_encode,
)

# V=2, M=1, PT=0, seq 0x1234, ts 0x01020304, SSRC 0xdeadbeef, 4 payload octets
SIMPLE = bytes.fromhex("8080123401020304deadbeef") + b"\xff\xfe\xfd\xfc"


def test_parse_simple() -> None:
    pkt = RtpPacket.parse(SIMPLE)
    assert (pkt.version, pkt.padding, pkt.extension, pkt.marker) == (2, False, False, True)
    assert (pkt.payload_type, pkt.sequence_number, pkt.timestamp, pkt.ssrc) == (
        0, 0x1234, 0x01020304, 0xDEADBEEF)
    assert pkt.csrc == [] and pkt.payload == b"\xff\xfe\xfd\xfc"
    assert bytes(pkt) == SIMPLE


def test_csrc_extension_padding() -> None:
    raw = (bytes([0x80 | 0x20 | 0x10 | 2, 101]) + struct.pack("!HII", 7, 160, 42)
           + struct.pack("!II", 1, 2)                       # 2 CSRCs
           + struct.pack("!HH", 0xBEDE, 1) + b"\x10\xaa\x00\x00"  # 1-word extension
           + b"payload" + b"\x00\x00\x03")                  # 3 octets of padding
    pkt = RtpPacket.parse(raw)
    assert pkt.csrc == [1, 2] and pkt.extension and pkt.extension_profile == 0xBEDE
    assert pkt.extension_data == b"\x10\xaa\x00\x00"
    assert pkt.padding and pkt.padding_size == 3 and pkt.payload == b"payload"
    assert pkt.payload_type == 101 and not pkt.marker
    assert bytes(pkt) == raw


def test_build_round_trip() -> None:
    pkt = RtpPacket(marker=True, payload_type=8, sequence_number=65535, timestamp=2**32 - 1,
                    ssrc=1, csrc=[9], payload=b"\xd5" * 160, padding_size=4)
    assert pkt.padding
    assert RtpPacket.parse(bytes(pkt)) == pkt
    assert len(bytes(RtpPacket(padding=True))) == 13


@pytest.mark.parametrize(("raw", "offset"), [
    (b"", 0),
    (SIMPLE[:11], 11),
    (b"\x40" + SIMPLE[1:], 0),                                   # version 1
    (b"\x83" + SIMPLE[1:12], 12),                                # CSRCs missing
    (b"\x90" + SIMPLE[1:12] + b"\xbe\xde", 12),                  # extension header cut
    (b"\x90" + SIMPLE[1:12] + b"\xbe\xde\x00\x05", 14),          # extension body cut
    (b"\xa0" + SIMPLE[1:12] + b"ab\x00", 14),                    # padding count 0
    (b"\xa0" + SIMPLE[1:12] + b"ab\x09", 14),                    # padding longer than packet
])
def test_errors(raw: bytes, offset: int) -> None:
    with pytest.raises(ParseError) as info:
        RtpPacket.parse(raw)
    assert info.value.offset == offset


# -- RFC 4733 ------------------------------------------------------------------------------
def test_dtmf_event_wire_format() -> None:
    ev = DtmfEvent.parse(bytes([11, 0x80 | 10, 0x03, 0x20]))
    assert ev == DtmfEvent(11, True, 10, 800) and ev.digit == "#"
    assert bytes(ev) == bytes([11, 0x8A, 0x03, 0x20])
    assert bytes(DtmfEvent(5, False, 63, 0xFFFF)) == b"\x05\x3f\xff\xff"
    assert DtmfEvent(16).digit is None and DtmfEvent.for_digit("a").event == 12
    assert EVENT_DIGITS[10] == "*" and len(EVENT_DIGITS) == 16
    with pytest.raises(ParseError):
        DtmfEvent.parse(b"\x01\x02")


def _events(digit: str, ts: int, seq: int, *, updates: int = 3, ends: int = 3,
            ssrc: int = 1) -> list[RtpPacket]:
    """One RFC 4733 §2.5.1 event: updates, then the end packet sent `ends` times."""
    code = EVENT_DIGITS.index(digit)
    out = []
    for i in range(updates):
        out.append(DtmfEvent(code, False, 10, 160 * (i + 1)))
    out += [DtmfEvent(code, True, 10, 160 * (updates + 1))] * ends
    return [RtpPacket(marker=(i == 0), payload_type=101, sequence_number=seq + i,
                      timestamp=ts, ssrc=ssrc, payload=bytes(e)) for i, e in enumerate(out)]


def test_receiver_one_digit_per_event() -> None:
    rx = DtmfReceiver(payload_type=101)
    got = []
    for i, d in enumerate("123#"):
        for pkt in _events(d, 1000 + i * 2000, i * 10):
            got.append(rx.feed(pkt))
    assert [g for g in got if g] == list("123#") and rx.digits == "123#"


def test_receiver_same_digit_twice_and_lost_end() -> None:
    rx = DtmfReceiver()
    packets = (_events("5", 8000, 0, ends=0)      # end packets all lost
               + _events("5", 9600, 10)           # same digit again: new timestamp
               + _events("5", 9600, 10)[-1:])     # late duplicate of the end
    for pkt in packets:
        rx.feed(pkt)
    assert rx.digits == "55"


def test_receiver_ignores_reordered_old_event_and_other_payload_types() -> None:
    rx = DtmfReceiver(payload_type=101)
    first, second = _events("1", 100, 0), _events("2", 5000, 10)
    for pkt in first + second + first[-1:]:
        rx.feed(pkt)
    audio = RtpPacket(payload_type=0, timestamp=7000, payload=b"\x00\x00\x00\x00")
    assert rx.feed(audio) is None
    assert rx.feed(RtpPacket(payload_type=101, timestamp=9999, payload=b"\x01")) is None
    assert rx.digits == "12"


def test_receiver_long_event_segments_are_one_digit() -> None:
    rx = DtmfReceiver()
    seg1 = RtpPacket(payload_type=101, timestamp=0, payload=bytes(DtmfEvent(9, False, 10, 0xFFFF)))
    seg2 = RtpPacket(payload_type=101, timestamp=0xFFFF, payload=bytes(DtmfEvent(9, True, 10, 500)))
    assert rx.feed(seg1) == "9" and rx.feed(seg2) is None and rx.digits == "9"


def test_receiver_separates_ssrcs() -> None:
    rx = DtmfReceiver()
    for pkt in _events("7", 100, 0, ssrc=1) + _events("7", 100, 0, ssrc=2):
        rx.feed(pkt)
    assert rx.digits == "77"


# -- G.711 ---------------------------------------------------------------------------------
def test_g711_reference_values() -> None:
    assert struct.unpack("<4h", ulaw_decode(bytes([0xFF, 0x7F, 0x00, 0x80]))) == (0, 0, -32124, 32124)
    assert struct.unpack("<4h", alaw_decode(bytes([0xD5, 0x55, 0x2A, 0xAA]))) == (8, -8, -32256, 32256)
    assert ulaw_encode(struct.pack("<3h", 0, 32767, -32768)) == b"\xff\x80\x00"
    assert alaw_encode(struct.pack("<3h", 0, 32767, -32768)) == b"\xd5\xaa\x2a"


def test_g711_code_round_trip() -> None:
    codes = bytes(range(256))
    assert alaw_encode(alaw_decode(codes)) == codes
    ulaw = ulaw_encode(ulaw_decode(codes))
    assert ulaw == codes.replace(b"\x7f", b"\xff")  # the μ-law negative zero maps to +0


def test_g711_tone_quantisation_error_is_small() -> None:
    pcm = tone(1000, 0.05, amplitude=0.5)
    assert len(pcm) == 800
    for encode, decode in ((ulaw_encode, ulaw_decode), (alaw_encode, alaw_decode)):
        back = decode(encode(pcm))
        orig = struct.unpack(f"<{len(pcm) // 2}h", pcm)
        new = struct.unpack(f"<{len(back) // 2}h", back)
        assert max(abs(a - b) for a, b in zip(orig, new)) < 1100  # ≤ half the top step
    with pytest.raises(ValueError):
        ulaw_encode(b"\x00")
