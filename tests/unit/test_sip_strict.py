"""qa.sip.strict: each rule, with the byte offset it points at."""

from __future__ import annotations

import pytest

from qa.sip.strict import RULES, check_message

SDP = (b"v=0\r\no=alice 2890844526 2890844526 IN IP4 192.0.2.101\r\ns=-\r\n"
       b"c=IN IP4 192.0.2.101\r\nt=0 0\r\nm=audio 49172 RTP/AVP 0 101\r\n"
       b"a=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-16\r\n")
HEAD = (
    "INVITE sip:bob@biloxi.example.com SIP/2.0\r\n"
    "Via: SIP/2.0/UDP pc33.atlanta.example.com:5060;branch=z9hG4bKnashds8;rport\r\n"
    "Max-Forwards: 70\r\n"
    "To: Bob <sip:bob@biloxi.example.com>\r\n"
    "From: \"Alice\" <sip:alice@atlanta.example.com>;tag=1928301774\r\n"
    "Call-ID: a84b4c76e66710@pc33.atlanta.example.com\r\n"
    "CSeq: 314159 INVITE\r\n"
    "Record-Route: <sip:p2.example.com;lr>, <sip:[2001:db8::1]:5060;lr>\r\n"
    "Contact: <sip:alice@pc33.atlanta.example.com>;expires=3600\r\n"
    "Content-Type: application/sdp\r\n"
    f"Content-Length: {len(SDP)}\r\n\r\n")
INVITE = HEAD.encode() + SDP
OK = (b"SIP/2.0 200 OK\r\n"
      b"v: SIP/2.0/UDP 192.0.2.4;branch=z9hG4bKnashds10;received=192.0.2.1\r\n"
      b"t: <sip:bob@biloxi.example.com>;tag=a6c85cf\r\nf: sip:alice@atlanta.example.com;tag=19\r\n"
      b"i: a84b4c76e66710\r\nCSeq: 314159 INVITE\r\nl: 0\r\n\r\n")


def edit(old: str, new: str, msg: bytes = INVITE) -> bytes:
    assert old.encode() in msg, old
    return msg.replace(old.encode(), new.encode(), 1)


def rules(problems, severity: str | None = None) -> list[str]:
    return [p.rule for p in problems if severity is None or p.severity == severity]


def only(problems, rule: str):
    found = [p for p in problems if p.rule == rule]
    assert len(found) == 1, problems
    return found[0]


def test_well_formed_messages_are_clean() -> None:
    assert check_message(INVITE) == []
    assert check_message(OK) == []
    assert check_message(b"\r\n\r\n" + OK) == []  # leading CRLFs skipped (RFC 3261 §7.5)


@pytest.mark.parametrize("data, rule", [
    (b"", "sip.start-line"), (b"\r\n\r\n", "sip.start-line"),
    (b"INVITE sip:a@b SIP/2.0\r\nVia: x", "sip.framing"),
])
def test_empty_and_unframed(data: bytes, rule: str) -> None:
    assert rule in rules(check_message(data))


def test_version() -> None:
    p = only(check_message(edit(" SIP/2.0\r\nVia", " SIP/7.0\r\nVia")), "sip.version")
    assert p.offset == INVITE.index(b"SIP/2.0") and p.severity == "error"
    p = only(check_message(edit(" SIP/2.0\r\nVia", " sip/2.0\r\nVia")), "sip.version")
    assert p.severity == "warning"
    assert rules(check_message(edit(" SIP/2.0\r\nVia", " SIP/2\r\nVia"))) == ["sip.start-line"]


def test_request_line_whitespace() -> None:
    p = only(check_message(edit("INVITE sip:bob", "INVITE  sip:bob")), "sip.whitespace")
    assert p.offset == 6
    p = only(check_message(edit("SIP/2.0\r\nVia", "SIP/2.0  \r\nVia")), "sip.whitespace")
    assert p.offset == INVITE.index(b"\r\n")
    p = only(check_message(edit("bob@biloxi.example.com SIP", "bob@biloxi.example.com; lr SIP")),
             "sip.uri.syntax")
    assert "whitespace inside the Request-URI" in p.reason


def test_request_uri() -> None:
    p = only(check_message(edit("INVITE sip:bob@biloxi.example.com", "INVITE <sip:bob@biloxi.example.com>")),
             "sip.uri.syntax")
    assert p.offset == 7
    p = only(check_message(edit("sip:bob@biloxi.example.com SIP", "sip:b%4x@biloxi.example.com SIP")),
             "sip.uri.escape")
    assert p.offset == 12
    p = only(check_message(edit("sip:bob@biloxi.example.com SIP", "sip:bob@biloxi.example.com?Route=x SIP")),
             "sip.uri.syntax")
    assert "headers" in p.reason
    p = only(check_message(edit("sip:bob@biloxi.example.com SIP", "sip:2001:db8::1 SIP")), "sip.uri.syntax")
    assert "'[' ']'" in p.reason and p.offset == 11
    p = only(check_message(edit("sip:bob@biloxi.example.com SIP", "sip:[2001:db8:::1] SIP")), "sip.uri.syntax")
    assert "not a valid IPv6" in p.reason
    p = only(check_message(edit("sip:bob@biloxi.example.com SIP", "sip:bob@h:70000 SIP")), "sip.uri.syntax")
    assert "port" in p.reason
    assert rules(check_message(edit("INVITE sip:bob@biloxi.example.com", "INVITE tel:+1-201-555-0123"))) == []
    p = only(check_message(edit("INVITE sip:bob@biloxi.example.com", "INVITE urn:service:sos")), "sip.uri.scheme")
    assert p.severity == "warning"


def test_status_line() -> None:
    p = only(check_message(edit("200 OK", "4294967301 OK", OK)), "sip.start-line")
    assert p.offset == 8 and "3 digits" in p.reason
    assert "outside 100-699" in only(check_message(edit("200 OK", "700 OK", OK)), "sip.start-line").reason
    assert check_message(edit("200 OK", "100 ", OK)) == []
    assert only(check_message(edit("200 OK", "200 O\"K", OK)), "sip.start-line").offset == 13


def test_missing_headers_are_named() -> None:
    data = edit("Call-ID: a84b4c76e66710@pc33.atlanta.example.com\r\n", "")
    data = data.replace(b"Max-Forwards: 70\r\n", b"")
    reasons = [p.reason for p in check_message(data) if p.rule == "sip.header.missing"]
    assert any("Call-ID" in r for r in reasons) and any("Max-Forwards" in r for r in reasons)
    assert all(p.offset == data.index(b"\r\n\r\n") for p in check_message(data))
    assert "sip.header.missing" not in rules(check_message(OK))  # responses need no Max-Forwards


def test_invite_without_contact() -> None:
    data = edit("Contact: <sip:alice@pc33.atlanta.example.com>;expires=3600\r\n", "")
    assert "Contact" in only(check_message(data), "sip.header.missing").reason


def test_duplicate_single_header() -> None:
    data = edit("CSeq: 314159 INVITE\r\n", "CSeq: 314159 INVITE\r\nCSeq: 2 INVITE\r\n")
    p = only(check_message(data), "sip.header.duplicate")
    assert p.offset == data.index(b"CSeq: 2") and "CSeq" in p.reason
    data = edit("Via: SIP", "Via: SIP/2.0/UDP h;branch=z9hG4bK2\r\nVia: SIP")
    assert check_message(data) == []  # list headers repeat freely


def test_cseq() -> None:
    data = edit("CSeq: 314159 INVITE", "CSeq: 314159 OPTIONS")
    p = only(check_message(data), "sip.cseq.method-mismatch")
    assert p.offset == data.index(b"OPTIONS")
    p = only(check_message(edit("CSeq: 314159", "CSeq: 2147483648")), "sip.value.oversized")
    assert p.offset == INVITE.index(b"314159")
    assert rules(check_message(edit("CSeq: 314159 INVITE", "CSeq: INVITE"))) == ["sip.header.syntax"]


def test_content_length() -> None:
    p = only(check_message(edit(f"Content-Length: {len(SDP)}", "Content-Length: 9999")),
             "sip.content-length.mismatch")
    assert p.offset == INVITE.index(b"Content-Length: ") + 16
    assert rules(check_message(edit(f"Content-Length: {len(SDP)}", "Content-Length: -1"))) == \
        ["sip.content-length.syntax"]
    p = only(check_message(INVITE + b"junk"), "sip.content-length.trailing")
    assert p.severity == "warning" and p.offset == len(INVITE)
    assert check_message(INVITE + b"\r\n") == []
    data = edit("Content-Type: application/sdp\r\n", "")
    assert "Content-Type" in only(check_message(data), "sip.header.missing").reason


def test_max_forwards() -> None:
    p = only(check_message(edit("Max-Forwards: 70", "Max-Forwards: 300")), "sip.max-forwards")
    assert p.severity == "error" and p.offset == INVITE.index(b"70\r\n")
    assert only(check_message(edit("Max-Forwards: 70", "Max-Forwards: 0")), "sip.max-forwards").severity == "warning"
    assert check_message(edit("Max-Forwards: 70", "Max-Forwards: 0070")) == []


def test_oversized_delta_seconds() -> None:
    p = only(check_message(edit("Content-Type", "Expires: 4294967296\r\nContent-Type")), "sip.value.oversized")
    assert "Expires" in p.reason
    assert check_message(edit("Content-Type", "Expires: 4294967295\r\nContent-Type")) == []
    assert "Contact expires" in only(check_message(edit("expires=3600", "expires=99999999999")),
                                     "sip.value.oversized").reason


def test_via() -> None:
    p = only(check_message(edit("branch=z9hG4bKnashds8", "branch=z9hG4bK")), "sip.via.branch")
    assert p.severity == "warning" and "only the magic cookie" in p.reason
    assert "lacks the z9hG4bK" in only(check_message(edit("z9hG4bKnashds8", "1234")), "sip.via.branch").reason
    assert "255.255.255.255" in only(check_message(edit("pc33.atlanta.example.com:5060;", "255.255.255.255;")),
                                     "sip.via.broadcast").reason
    data = edit("pc33.atlanta.example.com:5060;branch=z9hG4bKnashds8;rport",
                "192.0.2.15;;,;,,")
    assert {p.rule for p in check_message(data)} >= {"sip.header.syntax"}
    p = only(check_message(edit("pc33.atlanta.example.com:5060;", "2001:db8::1;")), "sip.uri.syntax")
    assert "Via sent-by" in p.reason
    assert check_message(edit("pc33.atlanta.example.com:5060;", "[2001:db8::1]:5060;received=2001:db8::2;")) == []


def test_folding_keeps_offsets() -> None:
    data = edit("Via: SIP/2.0/UDP pc33", "Via: SIP / 2.0\r\n /UDP\r\n    pc33")
    assert check_message(data) == []
    data = edit("CSeq: 314159 INVITE", "CSeq: 314159\r\n  OPTIONS")
    assert only(check_message(data), "sip.cseq.method-mismatch").offset == data.index(b"OPTIONS")


def test_name_addr_diagnosis() -> None:
    data = edit("To: Bob <sip:bob@biloxi.example.com>", "To: \"Bob <sip:bob@biloxi.example.com>")
    assert "unterminated quoted string" in only(check_message(data), "sip.header.syntax").reason
    data = edit("To: Bob <sip:bob@biloxi.example.com>", "To: Bob < sip:bob@biloxi.example.com >")
    assert only(check_message(data), "sip.whitespace").offset == data.index(b"< sip") + 1
    data = edit("To: Bob <sip", "To: Bob, Jr <sip")
    assert "quoted-string" in only(check_message(data), "sip.header.syntax").reason
    data = edit("Contact: <sip:alice@pc33.atlanta.example.com>;expires=3600",
                "Contact: sip:alice@pc33.atlanta.example.com?Route=x")
    assert "'<' '>'" in only(check_message(data), "sip.header.syntax").reason
    data = edit(";expires=3600", ";;")
    assert "empty parameter" in only(check_message(data), "sip.header.syntax").reason


def test_line_level_problems() -> None:
    lf = INVITE.replace(b"\r\n", b"\n")
    p = only(check_message(lf), "sip.whitespace")
    assert p.severity == "warning" and p.offset == lf.index(b"\n")
    p = only(check_message(edit("Max-Forwards: 70", "Max-Forwards: 7\r0")), "sip.whitespace")
    assert p.severity == "error"
    data = edit("Max-Forwards: 70\r\n", "Max-Forwards 70\r\n")
    assert "without ':'" in only(check_message(data), "sip.header.syntax").reason
    data = edit("SIP/2.0\r\nVia", "SIP/2.0\r\n folded\r\nVia")
    assert "continuation line" in only(check_message(data), "sip.whitespace").reason
    data = edit("Call-ID: a84b", "Call-ID: a8\x01b")
    assert any("control character" in p.reason for p in check_message(data))
    data = INVITE.replace(b"To: Bob <sip", b'To: "B\xffb" <sip')
    p = only(check_message(data), "sip.encoding")
    assert p.offset == data.index(b"\xff") and rules(check_message(data)) == ["sip.encoding"]
    assert rules(check_message(edit("Call-ID: a84b", "Bad Name: 1\r\nCall-ID: a84b"))) == ["sip.header.syntax"]


def test_contact_star() -> None:
    data = edit("Contact: <sip:alice@pc33.atlanta.example.com>;expires=3600", "Contact: *")
    assert "REGISTER" in only(check_message(data), "sip.header.syntax").reason


def test_auth_quoting() -> None:
    auth = ('Authorization: Digest username="bob", realm="biloxi.com", nonce="dcd98b", '
            'uri="sip:bob@biloxi.com", response="6629fae49393a05397450978507c4ef1", nc=00000001, qop=auth\r\n')
    assert check_message(edit("Content-Type", auth + "Content-Type")) == []
    data = edit("Content-Type", auth.replace('username="bob"', "username=bob") + "Content-Type")
    assert "must be a quoted-string" in only(check_message(data), "sip.header.syntax").reason
    data = edit("Content-Type", auth.replace("nc=00000001", 'nc="00000001"') + "Content-Type")
    assert "must not be quoted" in only(check_message(data), "sip.header.syntax").reason
    data = edit("Content-Type", 'WWW-Authenticate: Digest realm="a", qop="auth\r\nContent-Type')
    assert "unterminated" in only(check_message(data), "sip.header.syntax").reason


def test_date_and_warning() -> None:
    data = edit("Content-Type", "Date: Fri, 01 Jan 2010 16:00:00 EST\r\nContent-Type")
    assert "GMT" in only(check_message(data), "sip.header.syntax").reason
    assert check_message(edit("Content-Type", "Date: Sat, 13 Nov 2010 23:29:00 GMT\r\nContent-Type")) == []
    data = edit("Content-Type", 'Warning: 1812 overture "x"\r\nContent-Type')
    assert "3 digits" in only(check_message(data), "sip.header.syntax").reason


def test_from_tag_warning() -> None:
    assert only(check_message(edit(";tag=1928301774", "")), "sip.from.tag").severity == "warning"


def test_all_rules_documented_and_sorted() -> None:
    data = edit("CSeq: 314159 INVITE", "CSeq: 99999999999 OPTIONS").replace(b"SIP/2.0\r\n", b"SIP/3.0\r\n", 1)
    problems = check_message(data)
    assert [p.offset for p in problems] == sorted(p.offset for p in problems)
    assert all(p.rule in RULES and p.severity in ("error", "warning") for p in problems)
