"""qa.sdp: RFC 8866 parsing/serialisation and RFC 3264 offer/answer."""

from __future__ import annotations

import pytest

from qa.errors import ParseError
from qa.sdp import (
    Connection, MediaDescription, Origin, RtpMap, SessionDescription, Timing, make_offer,
    negotiate,
)

OFFER = (
    b"v=0\r\n"
    b"o=alice 2890844526 2890844526 IN IP4 atlanta.example.com\r\n"
    b"s=Call\r\n"
    b"i=A call\r\n"
    b"c=IN IP4 192.0.2.10\r\n"
    b"b=AS:128\r\n"
    b"t=0 0\r\n"
    b"a=tool:voipqa\r\n"
    b"m=audio 49170 RTP/AVP 0 8 97 101 13\r\n"
    b"b=TIAS:64000\r\n"
    b"a=rtpmap:97 iLBC/8000\r\n"
    b"a=fmtp:97 mode=30\r\n"
    b"a=rtpmap:101 telephone-event/8000\r\n"
    b"a=fmtp:101 0-15\r\n"
    b"a=ptime:20\r\n"
    b"a=sendonly\r\n"
    b"m=video 51372 RTP/AVP 31 96\r\n"
    b"c=IN IP4 192.0.2.11\r\n"
    b"a=rtpmap:96 H264/90000\r\n"
)


def test_parse_fields() -> None:
    sdp = SessionDescription.parse(OFFER)
    assert sdp.version == 0
    assert sdp.origin == Origin("alice", 2890844526, 2890844526, "IN", "IP4", "atlanta.example.com")
    assert sdp.session_name == "Call" and sdp.other == [("i", "A call")]
    assert sdp.connection == Connection("IN", "IP4", "192.0.2.10")
    assert sdp.timing == [Timing(0, 0)] and sdp.bandwidths == [("AS", 128)]
    assert sdp.attributes == [("tool", "voipqa")] and sdp.attribute("tool") == "voipqa"
    audio, video = sdp.media
    assert sdp.audio is audio
    assert (audio.media, audio.port, audio.proto, audio.formats) == (
        "audio", 49170, "RTP/AVP", ["0", "8", "97", "101", "13"])
    assert audio.bandwidths == [("TIAS", 64000)] and audio.connection is None
    assert sdp.address_of(audio) == "192.0.2.10" and sdp.address_of(video) == "192.0.2.11"
    assert audio.rtpmap == {0: RtpMap("PCMU", 8000), 8: RtpMap("PCMA", 8000),
                            97: RtpMap("iLBC", 8000), 101: RtpMap("telephone-event", 8000),
                            13: RtpMap("CN", 8000)}
    assert audio.fmtp == {97: "mode=30", 101: "0-15"}
    assert audio.codec_names() == ["PCMU", "PCMA", "iLBC", "telephone-event", "CN"]
    assert audio.direction == "sendonly" and audio.ptime == 20
    assert video.direction == "sendrecv" and video.codec_names() == ["H261", "H264"]


def test_round_trip() -> None:
    sdp = SessionDescription.parse(OFFER)
    assert bytes(sdp) == OFFER
    assert SessionDescription.parse(bytes(sdp)) == sdp
    assert SessionDescription.parse(OFFER.decode()) == sdp


def test_lf_only_and_trailing_blank_lines() -> None:
    sdp = SessionDescription.parse(OFFER.replace(b"\r\n", b"\n") + b"\n\n")
    assert bytes(sdp) == OFFER


def test_session_level_direction_and_other_lines() -> None:
    raw = (b"v=0\r\no=- 1 2 IN IP6 ::1\r\ns= \r\nu=http://x\r\ne=a@b\r\np=+1 555\r\n"
           b"c=IN IP6 ::1\r\nt=3034423619 3042462419\r\nr=7d 1h 0 25h\r\nz=2882844526 -1h\r\n"
           b"k=prompt\r\na=recvonly\r\nm=audio 5004/2 RTP/AVP 0\r\ni=voice\r\nk=clear:x\r\n")
    sdp = SessionDescription.parse(raw)
    assert bytes(sdp) == raw
    m = sdp.media[0]
    assert m.port_count == 2 and m.direction == "sendrecv" and sdp.direction_of(m) == "recvonly"
    assert sdp.timing[0].repeats == ["7d 1h 0 25h"] and sdp.origin.addrtype == "IP6"


BAD = [
    ("empty", b"", 0),
    ("no v", b"o=- 1 1 IN IP4 x\r\n", 0),
    ("v not 0", b"v=1\r\n", 0),
    ("s before o", b"v=0\r\ns=-\r\n", 5),
    ("missing s", b"v=0\r\no=- 1 1 IN IP4 x\r\n", 23),
    ("missing t", b"v=0\r\no=- 1 1 IN IP4 x\r\ns=-\r\n", 28),
    ("bad line", b"v=0\r\no=- 1 1 IN IP4 x\r\ns=-\r\nt=0 0\r\nhello\r\n", 35),
    ("space before =", b"v=0\r\no=- 1 1 IN IP4 x\r\ns=-\r\nt=0 0\r\na =x\r\n", 35),
    ("uppercase type", b"v=0\r\no=- 1 1 IN IP4 x\r\ns=-\r\nt=0 0\r\nA=x\r\n", 35),
    ("empty line", b"v=0\r\n\r\no=- 1 1 IN IP4 x\r\n", 5),
    ("unknown type", b"v=0\r\no=- 1 1 IN IP4 x\r\ns=-\r\nt=0 0\r\nq=1\r\n", 35),
    ("short o", b"v=0\r\no=- 1 IN IP4 x\r\ns=-\r\nt=0 0\r\n", 5),
    ("o sess-id", b"v=0\r\no=- x 1 IN IP4 x\r\ns=-\r\nt=0 0\r\n", 5),
    ("bad c", b"v=0\r\no=- 1 1 IN IP4 x\r\ns=-\r\nc=IN IP4\r\nt=0 0\r\n", 28),
    ("bad b", b"v=0\r\no=- 1 1 IN IP4 x\r\ns=-\r\nb=AS\r\nt=0 0\r\n", 28),
    ("bad t", b"v=0\r\no=- 1 1 IN IP4 x\r\ns=-\r\nt=0\r\n", 28),
    ("r before t", b"v=0\r\no=- 1 1 IN IP4 x\r\ns=-\r\nr=1 2 3\r\nt=0 0\r\n", 28),
    ("m before t", b"v=0\r\no=- 1 1 IN IP4 x\r\ns=-\r\nm=audio 1 RTP/AVP 0\r\n", 28),
    ("repeated v", b"v=0\r\no=- 1 1 IN IP4 x\r\ns=-\r\nt=0 0\r\nv=0\r\n", 35),
    ("m port", b"v=0\r\no=- 1 1 IN IP4 x\r\ns=-\r\nt=0 0\r\nm=audio 70000 RTP/AVP 0\r\n", 35),
    ("m no fmt", b"v=0\r\no=- 1 1 IN IP4 x\r\ns=-\r\nt=0 0\r\nm=audio 1 RTP/AVP\r\n", 35),
    ("t in media", b"v=0\r\no=- 1 1 IN IP4 x\r\ns=-\r\nt=0 0\r\nm=audio 1 RTP/AVP 0\r\nt=0 0\r\n", 56),
    ("bad rtpmap", b"v=0\r\no=- 1 1 IN IP4 x\r\ns=-\r\nt=0 0\r\nm=audio 1 RTP/AVP 96\r\na=rtpmap:96 opus\r\n", 57),
    ("rtpmap pt", b"v=0\r\no=- 1 1 IN IP4 x\r\ns=-\r\nt=0 0\r\nm=audio 1 RTP/AVP 0\r\na=rtpmap:300 X/8000\r\n", 56),
    ("bad attr", b"v=0\r\no=- 1 1 IN IP4 x\r\ns=-\r\nt=0 0\r\na=bad name\r\n", 35),
]


@pytest.mark.parametrize(("label", "raw", "offset"), BAD, ids=[b[0] for b in BAD])
def test_errors(label: str, raw: bytes, offset: int) -> None:
    with pytest.raises(ParseError) as info:
        SessionDescription.parse(raw)
    assert info.value.offset == offset, info.value


def test_error_offset_is_in_bytes() -> None:
    raw = "v=0\no=\u00e9\u00e9 1 1 IN IP4 x\ns=-\nt=0 0\nq=1\n".encode()
    with pytest.raises(ParseError) as info:
        SessionDescription.parse(raw)
    assert raw[info.value.offset:].startswith(b"q=1")


# -- offer/answer ---------------------------------------------------------------------------
def test_negotiate_keeps_offer_order_and_numbers() -> None:
    offer = SessionDescription.parse(OFFER)
    answer = negotiate(offer, ["telephone-event", "PCMA", "pcmu"], address="10.0.0.1",
                       port=4000, session_id=42)
    assert answer is not None
    assert answer.origin == Origin("-", 42, 42, "IN", "IP4", "10.0.0.1")
    assert answer.connection == Connection("IN", "IP4", "10.0.0.1")
    audio, video = answer.media
    assert audio.port == 4000 and audio.formats == ["0", "8", "101"]
    assert audio.codec_names() == ["PCMU", "PCMA", "telephone-event"]
    assert audio.fmtp == {101: "0-15"}
    assert audio.direction == "recvonly" and audio.ptime == 20
    assert (video.port, video.formats) == (0, ["31", "96"])  # rejected, RFC 3264 §6
    assert SessionDescription.parse(bytes(answer)) == answer


def test_negotiate_drops_telephone_event_unless_accepted() -> None:
    offer = SessionDescription.parse(OFFER)
    answer = negotiate(offer, ["iLBC"], address="10.0.0.1", port=4000)
    assert answer is not None and answer.media[0].codec_names() == ["iLBC"]
    assert answer.media[0].fmtp == {97: "mode=30"}


def test_negotiate_no_common_codec() -> None:
    offer = SessionDescription.parse(OFFER)
    assert negotiate(offer, ["G729", "telephone-event", "CN"], address="h", port=1) is None
    assert negotiate(offer, [], address="h", port=1) is None


@pytest.mark.parametrize(("offered", "answered"), [
    ("sendonly", "recvonly"), ("recvonly", "sendonly"), ("sendrecv", "sendrecv"),
    ("inactive", "inactive"), (None, "sendrecv"),
])
def test_negotiate_mirrors_direction(offered: str | None, answered: str) -> None:
    offer = make_offer(["PCMU"], address="192.0.2.1", port=5000, session_id=1)
    offer.media[0].attributes = [a for a in offer.media[0].attributes if a[0] != "sendrecv"]
    if offered:
        offer.media[0].attributes.append((offered, None))
    answer = negotiate(offer, ["PCMU"], address="192.0.2.2", port=6000)
    assert answer is not None and answer.media[0].direction == answered


def test_negotiate_session_level_direction_and_second_audio() -> None:
    offer = make_offer(["PCMA"], address="192.0.2.1", port=5000, session_id=1)
    offer.media[0].attributes = [a for a in offer.media[0].attributes if a[0] != "sendrecv"]
    offer.attributes.append(("sendonly", None))
    offer.media.append(MediaDescription("audio", 5002, "RTP/AVP", ["8"]))
    answer = negotiate(offer, ["PCMA"], address="192.0.2.2", port=6000)
    assert answer is not None
    assert answer.media[0].direction == "recvonly"
    assert [m.port for m in answer.media] == [6000, 0]


def test_make_offer() -> None:
    offer = make_offer(["PCMU", "PCMA", "G722", "opus", "telephone-event", "AMR-WB"],
                       address="2001:db8::1", port=40000, session_id=7)
    audio = offer.media[0]
    assert audio.formats == ["0", "8", "9", "111", "101", "96"]
    assert audio.rtpmap[111] == RtpMap("opus", 48000, 2)
    assert audio.rtpmap[101] == RtpMap("telephone-event", 8000)
    assert audio.fmtp[101] == "0-16"
    assert audio.codec_names() == ["PCMU", "PCMA", "G722", "opus", "telephone-event", "AMR-WB"]
    assert offer.connection == Connection("IN", "IP6", "2001:db8::1")
    assert offer.origin.sess_id == 7 and audio.port == 40000 and audio.direction == "sendrecv"
    assert SessionDescription.parse(bytes(offer)) == offer
    assert make_offer(["PCMU"], address="h", port=1).origin.sess_id >= 0
