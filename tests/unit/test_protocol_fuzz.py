"""Fuzz the sans-I/O parsers: whatever the bytes, only ParseError may escape."""

from __future__ import annotations


from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from qa.errors import ParseError
from qa.rtp import DtmfEvent, DtmfReceiver, RtpPacket
from qa.sdp import SessionDescription, negotiate
from qa.sip import Request, StreamFramer, parse_message
from tests.corpus import CORPUS  # optional extra seeds: the fuzz asserts without them

CORPUS = CORPUS / "rfc4475"

SIP_SEEDS = [
    b"INVITE sip:bob@example.com SIP/2.0\r\nVia: SIP/2.0/UDP h:5060;branch=z9hG4bK1;rport\r\n"
    b"Max-Forwards: 70\r\nTo: <sip:bob@example.com>\r\nFrom: \"A\" <sip:a@h>;tag=1\r\n"
    b"Call-ID: x@h\r\nCSeq: 1 INVITE\r\nContact: <sip:a@h>\r\nContent-Type: application/sdp\r\n"
    b"Content-Length: 5\r\n\r\nv=0\r\n",
    b"SIP/2.0 180 Ringing\r\nv: SIP/2.0/TCP [::1]:5061;branch=z9hG4bK2\r\nt: <sip:b@h>;tag=9\r\n"
    b"f: sip:a@h;tag=1\r\ni: y\r\nCSeq: 2 INVITE\r\nl: 0\r\n\r\n",
]
if CORPUS.exists():
    SIP_SEEDS += [p.read_bytes() for p in sorted(CORPUS.glob("*.dat"))[:20]]

SDP_SEED = (b"v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\nb=AS:64\r\nt=0 0\r\n"
            b"a=sendrecv\r\nm=audio 4000 RTP/AVP 0 8 101\r\na=rtpmap:101 telephone-event/8000\r\n"
            b"a=fmtp:101 0-16\r\na=ptime:20\r\nm=video 0 RTP/AVP 31\r\n")
RTP_SEED = bytes.fromhex("b0e5000100000a000000abcd00000001bede00011000000061626300000003")

FUZZ = settings(max_examples=400, deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


@st.composite
def mutated(draw: st.DrawFn, seeds: list[bytes]) -> bytes:
    """A seed with a few byte-level edits: flip, insert, delete, truncate, splice CR/LF/:."""
    data = bytearray(draw(st.sampled_from(seeds)))
    for _ in range(draw(st.integers(1, 6))):
        op = draw(st.integers(0, 4))
        pos = draw(st.integers(0, len(data)))
        if op == 0 and data:
            data[min(pos, len(data) - 1)] = draw(st.integers(0, 255))
        elif op == 1:
            data[pos:pos] = draw(st.sampled_from(
                [b"\r\n", b"\n", b" ", b":", b";", b",", b"\"", b"<", b">", b"[", b"%",
                 b"\x00", b"\xff", b"=", b"/", b"\r\n ", b"9999999999"]))
        elif op == 2:
            del data[pos:pos + draw(st.integers(1, 8))]
        elif op == 3:
            del data[pos:]
        else:
            data[pos:pos] = draw(st.binary(max_size=8))
    return bytes(data)


def _sip_ok(data: bytes) -> None:
    try:
        msg = parse_message(data)
    except ParseError:
        return
    for prop in ("call_id", "cseq", "from_tag", "to_tag", "top_via", "vias", "contacts",
                 "content_type"):
        try:
            getattr(msg, prop)
        except ParseError:
            pass
    if isinstance(msg, Request):
        try:
            msg.request_uri
        except ParseError:
            pass
    parse_message(bytes(msg))  # what we parsed must serialise to something parseable


@FUZZ
@given(st.binary(max_size=300))
def test_sip_random_bytes(data: bytes) -> None:
    _sip_ok(data)


@FUZZ
@given(mutated(SIP_SEEDS))
def test_sip_mutated(data: bytes) -> None:
    _sip_ok(data)


@FUZZ
@given(mutated(SIP_SEEDS), st.integers(1, 64))
def test_stream_framer_mutated(data: bytes, chunk: int) -> None:
    framer = StreamFramer(max_message=4096)
    try:
        for i in range(0, len(data), chunk):
            for frame in framer.feed(data[i:i + chunk]):
                _sip_ok(frame)
    except ParseError:
        pass


@FUZZ
@given(st.one_of(mutated([SDP_SEED]), st.binary(max_size=200),
                 st.text(max_size=200).map(str.encode)))
def test_sdp(data: bytes) -> None:
    try:
        sdp = SessionDescription.parse(data)
    except ParseError:
        return
    for m in sdp.media:
        m.rtpmap, m.fmtp, m.direction, m.codec_names(), m.ptime
    assert SessionDescription.parse(bytes(sdp)) == sdp
    negotiate(sdp, ["PCMU", "telephone-event"], address="192.0.2.9", port=5000)


@FUZZ
@given(st.one_of(mutated([RTP_SEED]), st.binary(max_size=64)))
def test_rtp(data: bytes) -> None:
    try:
        pkt = RtpPacket.parse(data)
    except ParseError:
        return
    assert RtpPacket.parse(bytes(pkt)) == pkt
    DtmfReceiver().feed(pkt)
    try:
        DtmfEvent.parse(pkt.payload)
    except ParseError:
        pass
