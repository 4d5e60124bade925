"""Golden tests of the decoders the witnesses share: the carrier and the analyzer hear the
same digits from the same bytes (SIP INFO bodies: qa.sip.info; RFC 4733 events:
qa.rtp.DtmfReceiver), whichever witness looks."""

from __future__ import annotations

from pathlib import Path

import pytest

from qa.analysis.engine import analyze
from qa.capture.writer import udp_packet, write_pcap
from qa.carrier.media import MediaSession, MediaSpec
from qa.rtp import EVENT_DIGITS as RTP_EVENT_DIGITS
from qa.rtp import RtpPacket
from qa.sip.info import EVENT_DIGITS, info_digit
from qa.sipp.media import rfc4733_packets

# (Content-Type, body) -> the digit, as every witness must hear it
INFO_BODIES = [
    ("application/dtmf-relay", b"Signal=5\r\nDuration=160\r\n", "5"),
    ("application/dtmf-relay", b"Signal=10\r\nDuration=160\r\n", "*"),      # RFC 4733 event code
    ("application/dtmf-relay", b"signal= 11\r\nduration=160\r\n", "#"),
    ("application/dtmf-relay", b"Signal=d\r\n", "D"),
    ("application/dtmf-relay;charset=utf-8", b"Signal=#", "#"),
    ("Application/DTMF-Relay", b"Duration=160\r\nSignal=15\r\n", "D"),
    ("application/dtmf", b"11", "#"),                                          # was # to one, nothing to the other
    ("application/dtmf", b"7\r\n", "7"),
    ("application/dtmf", b"*", "*"),
    ("application/dtmf-relay", b"Signal=16\r\n", None),                       # out of the event table
    ("application/dtmf-relay", b"Signal=55\r\n", None),
    ("application/dtmf-relay", b"Duration=160\r\n", None),
    ("application/dtmf", b"x", None),
    ("application/dtmf", b"", None),
    ("text/plain", b"Signal=9", None),
    (None, b"Signal=9", None),
    ("application/dtmf-relay", b"Signal=\xff\xfe", None),                     # garbage is no digit, not an error
]


@pytest.mark.parametrize("ctype, body, digit", INFO_BODIES)
def test_info_bodies(ctype, body, digit):
    assert info_digit(ctype, body) == digit


def test_the_carrier_and_the_analyzer_use_the_one_info_decoder():
    import qa.analysis.sipevent as analyzer
    import qa.carrier.uas as carrier

    assert carrier.info_digit is analyzer.info_digit is info_digit
    assert EVENT_DIGITS == RTP_EVENT_DIGITS          # RFC 4733 §3.2, one table for INFO and RTP


# --- INFO on the wire: the analyzer hears what the carrier's table says ------------------------
CUSTOMER, CARRIER = ("10.2.0.1", 5062), ("10.2.0.9", 5060)
CALL_ID = "shared-1@test"


def _sip(start: str, cseq: str, *, to_tag: bool, ctype: str = "", body: bytes = b"", branch: str) -> bytes:
    head = (f"{start}\r\nVia: SIP/2.0/UDP 10.2.0.1:5062;branch={branch}\r\nMax-Forwards: 70\r\n"
            f"From: <sip:1001@10.2.0.9>;tag=f1\r\nTo: <sip:1555@10.2.0.9>{';tag=t1' if to_tag else ''}\r\n"
            f"Call-ID: {CALL_ID}\r\nCSeq: {cseq}\r\nContact: <sip:1001@10.2.0.1:5062>\r\n")
    if ctype:
        head += f"Content-Type: {ctype}\r\n"
    return (head + f"Content-Length: {len(body)}\r\n\r\n").encode() + body


def _sdp(ip: str, port: int) -> bytes:
    return (f"v=0\r\no=- 1 1 IN IP4 {ip}\r\ns=-\r\nc=IN IP4 {ip}\r\nt=0 0\r\nm=audio {port} RTP/AVP 0 101\r\n"
            "a=rtpmap:0 PCMU/8000\r\na=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-16\r\n").encode()


def _call(path: Path, middle: list[tuple[tuple[str, int], tuple[str, int], bytes]]) -> Path:
    """INVITE / 200 (PCMU + telephone-event 101) / ACK / ``middle`` / BYE / 200."""
    t, pkts = 1_700_000_000.0, []
    frames = [(CUSTOMER, CARRIER, _sip("INVITE sip:1555@10.2.0.9 SIP/2.0", "1 INVITE", to_tag=False,
                                       ctype="application/sdp", body=_sdp("10.2.0.1", 4000), branch="z9hG4bK-i")),
              (CARRIER, CUSTOMER, _sip("SIP/2.0 200 OK", "1 INVITE", to_tag=True, ctype="application/sdp",
                                       body=_sdp("10.2.0.9", 6000), branch="z9hG4bK-i")),
              (CUSTOMER, CARRIER, _sip("ACK sip:1555@10.2.0.9 SIP/2.0", "1 ACK", to_tag=True, branch="z9hG4bK-a")),
              *middle,
              (CUSTOMER, CARRIER, _sip("BYE sip:1555@10.2.0.9 SIP/2.0", "99 BYE", to_tag=True, branch="z9hG4bK-b")),
              (CARRIER, CUSTOMER, _sip("SIP/2.0 200 OK", "99 BYE", to_tag=True, branch="z9hG4bK-b"))]
    for src, dst, data in frames:
        t += 0.02
        pkts.append((t, udp_packet(*src, *dst, data)))
    write_pcap(path, pkts)
    return path


def test_info_digits_on_the_wire_are_the_decoders_digits(tmp_path):
    infos = [(CUSTOMER, CARRIER, _sip("INFO sip:1555@10.2.0.9 SIP/2.0", f"{2 + i} INFO", to_tag=True, ctype=ctype,
                                      body=body, branch=f"z9hG4bK-n{i}"))
             for i, (ctype, body, _) in enumerate(INFO_BODIES) if ctype]
    report = analyze(_call(tmp_path / "info.pcap", infos))
    expected = "".join(d for c, _, d in INFO_BODIES if c and d)
    assert report.call(CALL_ID).dtmf_info == expected == "5*#D#D#7*"


# --- RFC 4733: end bit sent three times, updates of one event, a repeated digit -------------------
def _events(digits: str) -> list[RtpPacket]:
    return [packet for _, packet in rfc4733_packets(digits)]


@pytest.mark.parametrize("digits", ["1", "55", "5#5", "0123456789*#ABCD"])
def test_rfc4733_events_are_the_same_digits_to_the_carrier_and_the_analyzer(tmp_path, digits):
    packets = _events(digits)
    assert sum(p.marker for p in packets) == len(digits)                 # one new event per digit
    session = MediaSession(MediaSpec(dtmf_pt=101))
    for packet in packets:
        session.on_packet(bytes(packet))
    rtp = [(("10.2.0.1", 4000), ("10.2.0.9", 6000), bytes(p)) for p in packets]
    report = analyze(_call(tmp_path / "rtp.pcap", rtp))
    assert "".join(session.digits) == report.call(CALL_ID).dtmf_rtp == digits
