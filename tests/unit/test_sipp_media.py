"""qa.sipp.media: the pcaps SIPp plays, read back and checked packet by packet."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest

from qa.capture.pcapfile import FrameSource
from qa.errors import BadInput
from qa.rtp import DtmfEvent, DtmfReceiver, RtpPacket, alaw_decode, ulaw_decode
from qa.sipp.media import (
    FRAME_MS, G722_FILLER, audio_packets, audio_pcap, inband_pcap, pcap_duration_ms, play_keys,
    rfc4733_packets, rfc4733_pcap,
)

DIGITS = "0123456789*#"
SIPP_PCAP = Path("/usr/share/sip-tester/dtmf_2833_1.pcap")


def _read(path: Path) -> tuple[int, list[tuple[float, RtpPacket]]]:
    """Link type and (time, RTP) of every record, parsed as SIPp's prepare_pcap does."""
    out = []
    linktypes = set()
    for _, ts, linktype, frame in FrameSource(path):
        linktypes.add(linktype)
        assert struct.unpack("!H", frame[12:14])[0] == 0x0800          # Ethernet II, IPv4
        ip = frame[14:]
        assert ip[0] >> 4 == 4 and ip[9] == 17                          # IPv4, UDP
        ihl = (ip[0] & 0x0F) * 4
        udp_len = struct.unpack("!H", ip[ihl + 4:ihl + 6])[0]
        assert udp_len == len(ip) - ihl                                 # SIPp copies udp->len bytes
        out.append((ts, RtpPacket.parse(ip[ihl + 8:ihl + udp_len])))
    (linktype,) = linktypes
    return linktype, out


def test_file_header_matches_what_sipp_ships(tmp_path):
    ours = rfc4733_pcap("1", tmp_path / "one.pcap").read_bytes()[:24]
    magic, major, minor, _, _, _, linktype = struct.unpack("<IHHiIII", ours)
    assert (magic, major, minor, linktype) == (0xA1B2C3D4, 2, 4, 1)     # pcap, Ethernet
    if SIPP_PCAP.exists():
        shipped = SIPP_PCAP.read_bytes()[:24]
        assert shipped[:8] == ours[:8] and shipped[20:24] == ours[20:24]


def test_rfc4733_layout_per_digit(tmp_path):
    linktype, packets = _read(rfc4733_pcap(DIGITS, tmp_path / "d.pcap"))
    assert linktype == 1
    per_digit = 4 + 3             # start + 3 updates (100 ms), then the end packet 3 times
    assert len(packets) == len(DIGITS) * per_digit
    seqs = [p.sequence_number for _, p in packets]
    assert seqs == list(range(seqs[0], seqs[0] + len(packets)))       # continuous
    for i, digit in enumerate(DIGITS):
        group = packets[i * per_digit:(i + 1) * per_digit]
        events = [DtmfEvent.parse(p.payload) for _, p in group]
        assert {e.digit for e in events} == {digit}
        assert [p.marker for _, p in group] == [True] + [False] * (per_digit - 1)
        assert len({p.timestamp for _, p in group}) == 1                # one event, one timestamp
        assert [e.duration for e in events] == [160, 320, 480, 640, 800, 800, 800]
        assert [e.end for e in events] == [False] * 4 + [True] * 3
        assert {p.payload_type for _, p in group} == {101}
        times = [t - packets[0][0] for t, _ in group]
        assert times == pytest.approx([(i * 10 + k) * 0.02 for k in range(per_digit)], abs=1e-6)
    stamps = [packets[i * per_digit][1].timestamp for i in range(len(DIGITS))]
    assert [b - a for a, b in zip(stamps, stamps[1:])] == [1600] * (len(DIGITS) - 1)  # 200 ms apart


def test_rfc4733_stream_decodes_to_the_digits():
    receiver = DtmfReceiver(payload_type=96)
    for _, packet in rfc4733_packets("#*90AD", payload_type=96, event_ms=60, gap_ms=40):
        receiver.feed(packet)
    assert receiver.digits == "#*90AD"


def test_rfc4733_options_and_bad_input(tmp_path):
    packets = rfc4733_packets("5", event_ms=50)           # rounded up to 60 ms: 3 frames
    assert [DtmfEvent.parse(p.payload).duration for _, p in packets] == [160, 320, 480, 480, 480]
    for bad in ("", "12x", "1" * 17):
        with pytest.raises(BadInput, match="digits"):
            rfc4733_packets(bad)
    with pytest.raises(BadInput, match="payload_type"):
        rfc4733_packets("1", payload_type=8)
    with pytest.raises(BadInput, match="event_ms"):
        rfc4733_packets("1", event_ms=0)


@pytest.mark.parametrize(("codec", "pt", "decode"), [("PCMU", 0, ulaw_decode), ("PCMA", 8, alaw_decode)])
def test_inband_frames_decode_back_to_the_digits(tmp_path, codec, pt, decode):
    from qa.rtp.dtmf_tones import InbandDtmfDetector

    _, packets = _read(inband_pcap(DIGITS, tmp_path / "i.pcap", codec=codec))
    assert {p.payload_type for _, p in packets} == {pt}
    assert all(len(p.payload) == 160 for _, p in packets)
    assert [p.marker for _, p in packets].count(True) == 1 and packets[0][1].marker
    assert [p.timestamp - packets[0][1].timestamp for _, p in packets] == [160 * k for k in range(len(packets))]
    assert [t - packets[0][0] for t, _ in packets] == pytest.approx(
        [0.02 * k for k in range(len(packets))], abs=1e-6)
    detector = InbandDtmfDetector()
    heard = [d for _, p in packets for d in detector.feed(decode(p.payload))]
    assert "".join(heard) == DIGITS


@pytest.mark.parametrize(("codec", "pt"), [("PCMU", 0), ("PCMA", 8), ("G722", 9)])
def test_audio_pcap_uses_the_static_payload_type(tmp_path, codec, pt):
    path = audio_pcap(codec, 1.0, tmp_path / f"{codec}.pcap")
    _, packets = _read(path)
    assert len(packets) == 50 and {p.payload_type for _, p in packets} == {pt}
    assert all(len(p.payload) == 160 for _, p in packets)
    assert pcap_duration_ms(path) == 1000
    if codec == "G722":
        assert packets[0][1].payload == bytes([G722_FILLER]) * 160


def test_audio_opus_and_unknown_codecs_are_refused():
    with pytest.raises(BadInput, match="opus"):
        audio_packets("opus", 1)
    with pytest.raises(BadInput, match="G729"):
        audio_packets("G729", 1)
    with pytest.raises(BadInput, match="seconds"):
        audio_packets("PCMU", 0)


def test_play_keys(tmp_path):
    path = rfc4733_pcap("12", tmp_path / "sub" / "d.pcap")
    keys = play_keys(path)
    assert keys["media_pcap"] == str(path.resolve())
    # two digits: 2 x 200 ms schedule minus the last gap (100 ms) plus the 2nd end retransmission
    assert int(keys["media_ms"]) == pcap_duration_ms(path) + 200
    assert pcap_duration_ms(path) == (10 + 6) * FRAME_MS + FRAME_MS
