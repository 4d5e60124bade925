"""qa.sdp.strict: each rule, with the byte offset inside the body."""

from __future__ import annotations

import pytest

from qa.sdp.strict import RULES, check_sdp

SDP = (b"v=0\r\no=alice 2890844526 2890844526 IN IP4 192.0.2.101\r\ns=-\r\n"
       b"c=IN IP4 192.0.2.101\r\nb=AS:64\r\nt=0 0\r\na=sendrecv\r\n"
       b"m=audio 49172 RTP/AVP 0 8 96 101\r\na=rtpmap:96 opus/48000/2\r\na=fmtp:96 useinbandfec=1\r\n"
       b"a=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-16\r\na=ptime:20\r\n"
       b"m=video 0 RTP/AVP 31\r\n")


def edit(old: bytes, new: bytes, data: bytes = SDP) -> bytes:
    assert old in data, old
    return data.replace(old, new, 1)


def only(problems, rule: str):
    found = [p for p in problems if p.rule == rule]
    assert len(found) == 1, problems
    return found[0]


def test_clean() -> None:
    assert check_sdp(SDP) == []
    assert check_sdp(SDP.replace(b"\r\n", b"\n")) == []
    per_media = edit(b"c=IN IP4 192.0.2.101\r\n", b"").replace(
        b"RTP/AVP 0 8 96 101\r\n", b"RTP/AVP 0 8 96 101\r\nc=IN IP6 2001:db8::1\r\n").replace(
        b"m=video 0 RTP/AVP 31\r\n", b"m=video 0 RTP/AVP 31\r\nc=IN IP4 h.example.com\r\n")
    assert check_sdp(per_media) == []  # RFC 5118 §4.8: c= per m=, IPv4 and IPv6


@pytest.mark.parametrize(("old", "new", "rule", "at"), [
    (b"v=0", b"v=1", "sdp.version", b"1\r\n"),
    (b"o=alice 2890844526 2890844526 IN IP4 192.0.2.101", b"o=alice x 1 IN IP4 192.0.2.101", "sdp.origin", b"alice x"),
    (b"c=IN IP4 192.0.2.101", b"c=IN IP4 2001:db8::1", "sdp.connection", b"IN IP4 2001"),
    (b"c=IN IP4 192.0.2.101", b"c=IN IP4", "sdp.connection", b"IN IP4\r"),
    (b"b=AS:64", b"b=AS 64", "sdp.syntax", b"AS 64"),
    (b"t=0 0", b"t=0", "sdp.syntax", b"0\r\na=send"),
    (b"a=sendrecv\r\n", b"a=sendrecv\r\nq=x\r\n", "sdp.line.unknown", b"q=x"),
    (b"s=-\r\n", b"s=-\r\ns=again\r\n", "sdp.line.duplicate", b"s=again"),
    (b"c=IN IP4 192.0.2.101\r\nb=AS:64\r\n", b"b=AS:64\r\nc=IN IP4 192.0.2.101\r\n",
     "sdp.line.order", b"c=IN"),
    (b"m=audio 49172", b"m =audio 49172", "sdp.syntax", b"m =audio"),
    (b"m=audio 49172", b"m=audio 70000", "sdp.media", b"70000"),
    (b"RTP/AVP 0 8 96 101", b"RTP/AVP 0 8 96 101 8", "sdp.payload.duplicate", b"m=audio"),
    (b"a=rtpmap:96 opus/48000/2\r\n", b"", "sdp.rtpmap.missing", b"m=audio"),
    (b"a=rtpmap:96 opus/48000/2", b"a=rtpmap:96 opus", "sdp.rtpmap.syntax", b"rtpmap:96 opus\r"),
    (b"a=rtpmap:96 opus/48000/2", b"a=rtpmap:97 opus/48000/2", "sdp.rtpmap.unused", b"a=rtpmap:97"),
    (b"a=fmtp:96 useinbandfec=1", b"a=fmtp:97 useinbandfec=1", "sdp.fmtp.unknown-pt", b"a=fmtp:97"),
    (b"a=fmtp:96 useinbandfec=1", b"a=fmtp:96", "sdp.fmtp.syntax", b"fmtp:96\r"),
    (b"a=fmtp:101 0-16", b"a=fmtp:101 0-16,300", "sdp.telephone-event", b"fmtp:101"),
    (b"a=fmtp:101 0-16", b"a=fmtp:101 16-0", "sdp.telephone-event", b"fmtp:101"),
    (b"a=fmtp:101 0-16", b"a=fmtp:101 0..16", "sdp.telephone-event", b"fmtp:101"),
    (b"a=ptime:20", b"a=pt ime:20", "sdp.attribute.syntax", b"pt ime"),
])
def test_rule(old: bytes, new: bytes, rule: str, at: bytes) -> None:
    data = edit(old, new)
    p = only(check_sdp(data), rule)
    assert p.offset in (data.index(at), data.index(at) - 2, data.index(at) + 2), (p, data.index(at))
    assert p.rule in RULES


def test_missing_lines_and_connection() -> None:
    data = edit(b"c=IN IP4 192.0.2.101\r\n", b"")
    p = [x for x in check_sdp(data) if x.rule == "sdp.connection.missing"]
    assert [x.offset for x in p] == [data.index(b"m=audio"), data.index(b"m=video")]
    data = edit(b"t=0 0\r\n", b"")
    assert {p.rule for p in check_sdp(data)} == {"sdp.line.missing", "sdp.line.order"}
    reasons = [p.reason for p in check_sdp(b"o=- 1 1 IN IP4 h.example.com\r\n") if p.rule == "sdp.line.missing"]
    assert any("first line must be v=" in r for r in reasons) and any("t=" in r for r in reasons)
    assert [p.rule for p in check_sdp(b"")] == ["sdp.line.missing"]


def test_telephone_event_rate() -> None:
    p = only(check_sdp(edit(b"telephone-event/8000", b"telephone-event/16000")), "sdp.telephone-event")
    assert p.severity == "warning"
    assert check_sdp(edit(b"telephone-event/8000", b"telephone-event/48000")) == []  # opus rate


def test_warnings() -> None:
    assert only(check_sdp(edit(b"s=-", b"s=")), "sdp.session-name").severity == "warning"
    assert only(check_sdp(SDP[:-2]), "sdp.syntax").severity == "warning"
    assert only(check_sdp(SDP + b"\r\n"), "sdp.syntax").severity == "warning"
