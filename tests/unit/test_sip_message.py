"""qa.sip messages: framing, parsing, serialisation, responses, stream framing, digest."""

from __future__ import annotations

import csv

import pytest

from qa.errors import ParseError
from qa.sip import (
    Headers, Request, Response, StreamFramer, build_authorization, digest_response,
    make_response, new_branch, new_call_id, new_tag, parse_cseq, parse_digest_challenge,
    parse_message,
)
from tests.corpus import CORPUS, corpus_params

CORPUS = CORPUS / "rfc4475"

SDP = (b"v=0\r\no=alice 2890844526 2890844526 IN IP4 192.0.2.101\r\ns=-\r\n"
       b"c=IN IP4 192.0.2.101\r\nt=0 0\r\nm=audio 49172 RTP/AVP 0 101\r\n"
       b"a=rtpmap:0 PCMU/8000\r\na=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-16\r\n")

INVITE = (
    b"INVITE sip:bob@biloxi.example.com SIP/2.0\r\n"
    b"Via: SIP/2.0/UDP pc33.atlanta.example.com:5060;branch=z9hG4bKnashds8;rport\r\n"
    b"Via: SIP/2.0/TCP proxy.example.com;branch=z9hG4bK1;received=192.0.2.1\r\n"
    b"Max-Forwards: 70\r\n"
    b"To: Bob <sip:bob@biloxi.example.com>\r\n"
    b"From: \"Alice\" <sip:alice@atlanta.example.com>;tag=1928301774\r\n"
    b"Call-ID: a84b4c76e66710@pc33.atlanta.example.com\r\n"
    b"CSeq: 314159 INVITE\r\n"
    b"Record-Route: <sip:p2.example.com;lr>, <sip:p1.example.com;lr>\r\n"
    b"Contact: <sip:alice@pc33.atlanta.example.com>\r\n"
    b"Content-Type: application/sdp\r\n"
    b"Content-Length: " + str(len(SDP)).encode() + b"\r\n\r\n" + SDP)

OK_200 = (
    b"SIP/2.0 200 OK\r\n"
    b"Via: SIP/2.0/UDP pc33.atlanta.example.com:5060;branch=z9hG4bKnashds8;rport=5060;received=192.0.2.101\r\n"
    b"To: Bob <sip:bob@biloxi.example.com>;tag=a6c85cf\r\n"
    b"From: \"Alice\" <sip:alice@atlanta.example.com>;tag=1928301774\r\n"
    b"Call-ID: a84b4c76e66710@pc33.atlanta.example.com\r\n"
    b"CSeq: 314159 INVITE\r\n"
    b"Contact: <sip:bob@192.0.2.4>\r\n"
    b"Content-Type: application/sdp\r\n"
    b"Content-Length: " + str(len(SDP)).encode() + b"\r\n\r\n" + SDP)

ACK = (
    b"ACK sip:bob@192.0.2.4 SIP/2.0\r\n"
    b"Via: SIP/2.0/UDP pc33.atlanta.example.com;branch=z9hG4bKnashds9\r\n"
    b"Max-Forwards: 70\r\n"
    b"To: Bob <sip:bob@biloxi.example.com>;tag=a6c85cf\r\n"
    b"From: Alice <sip:alice@atlanta.example.com>;tag=1928301774\r\n"
    b"Call-ID: a84b4c76e66710@pc33.atlanta.example.com\r\n"
    b"CSeq: 314159 ACK\r\n"
    b"Content-Length: 0\r\n\r\n")

BYE = (
    b"BYE sip:alice@pc33.atlanta.example.com SIP/2.0\r\n"
    b"v: SIP/2.0/UDP 192.0.2.4;branch=z9hG4bKnashds10\r\n"
    b"Max-Forwards: 70\r\n"
    b"f: Bob <sip:bob@biloxi.example.com>;tag=a6c85cf\r\n"
    b"t: Alice <sip:alice@atlanta.example.com>;tag=1928301774\r\n"
    b"i: a84b4c76e66710@pc33.atlanta.example.com\r\n"
    b"CSeq: 231 BYE\r\n"
    b"l: 0\r\n\r\n")

REGISTER = (
    b"REGISTER sip:registrar.biloxi.example.com SIP/2.0\r\n"
    b"Via: SIP/2.0/UDP bobspc.biloxi.example.com:5060;branch=z9hG4bKnashds7\r\n"
    b"Max-Forwards: 70\r\n"
    b"To: Bob <sip:bob@biloxi.example.com>\r\n"
    b"From: Bob <sip:bob@biloxi.example.com>;tag=456248\r\n"
    b"Call-ID: 843817637684230@998sdasdh09\r\n"
    b"CSeq: 1826 REGISTER\r\n"
    b"Contact: <sip:bob@192.0.2.4>;expires=7200\r\n"
    b"Content-Length: 0\r\n\r\n")

UNAUTHORIZED = (
    b"SIP/2.0 401 Unauthorized\r\n"
    b"Via: SIP/2.0/UDP bobspc.biloxi.example.com:5060;branch=z9hG4bKnashds7;received=192.0.2.201\r\n"
    b"To: Bob <sip:bob@biloxi.example.com>;tag=2493k59kd\r\n"
    b"From: Bob <sip:bob@biloxi.example.com>;tag=456248\r\n"
    b"Call-ID: 843817637684230@998sdasdh09\r\n"
    b"CSeq: 1826 REGISTER\r\n"
    b"WWW-Authenticate: Digest realm=\"atlanta.example.com\", qop=\"auth\", "
    b"nonce=\"84f1c1ae6cbe5ua9e0\", opaque=\"\", stale=FALSE, algorithm=MD5\r\n"
    b"Content-Length: 0\r\n\r\n")

GOLDEN = {"invite": INVITE, "200": OK_200, "ack": ACK, "bye": BYE, "register": REGISTER,
          "401": UNAUTHORIZED}


# -- golden messages -------------------------------------------------------------------
@pytest.mark.parametrize("name", sorted(GOLDEN))
def test_golden_round_trip(name: str) -> None:
    raw = GOLDEN[name]
    msg = parse_message(raw)
    assert bytes(msg) == raw
    assert parse_message(bytes(msg)) == msg


def test_invite_fields() -> None:
    msg = parse_message(INVITE)
    assert isinstance(msg, Request)
    assert msg.method == "INVITE" and msg.uri == "sip:bob@biloxi.example.com"
    assert msg.call_id == "a84b4c76e66710@pc33.atlanta.example.com"
    assert msg.cseq == (314159, "INVITE")
    assert msg.from_tag == "1928301774" and msg.to_tag is None
    assert msg.from_addr.display == "Alice"
    via = msg.top_via
    assert (via.transport, via.host, via.port, via.branch) == (
        "UDP", "pc33.atlanta.example.com", 5060, "z9hG4bKnashds8")
    assert "rport" in via.params and via.rport is None
    assert [v.host for v in msg.vias] == ["pc33.atlanta.example.com", "proxy.example.com"]
    assert msg.body == SDP and msg.content_type == "application/sdp"
    assert msg.request_uri.user == "bob"
    assert msg.headers.get_all("record-route") == ["<sip:p2.example.com;lr>",
                                                   "<sip:p1.example.com;lr>"]


def test_response_fields() -> None:
    msg = parse_message(OK_200)
    assert isinstance(msg, Response)
    assert (msg.status, msg.reason, msg.method) == (200, "OK", "INVITE")
    assert msg.is_final and msg.is_success and not msg.is_provisional and not msg.is_error
    assert msg.to_tag == "a6c85cf"
    assert msg.top_via.rport == 5060 and msg.top_via.received == "192.0.2.101"
    r401 = parse_message(UNAUTHORIZED)
    assert r401.is_error and r401.status == 401


def test_compact_forms_resolve() -> None:
    msg = parse_message(BYE)
    assert msg.call_id == "a84b4c76e66710@pc33.atlanta.example.com"
    assert msg.from_tag == "a6c85cf" and msg.to_tag == "1928301774"
    assert msg.top_via.branch == "z9hG4bKnashds10"
    assert msg.headers.get("Content-Length") == "0"
    assert ("v", "SIP/2.0/UDP 192.0.2.4;branch=z9hG4bKnashds10") in list(msg.headers)


def test_folding_and_lf_only() -> None:
    raw = BYE.replace(b"CSeq: 231 BYE\r\n", b"CSeq: 231\r\n  BYE\r\n").replace(b"\r\n", b"\n")
    msg = parse_message(raw)
    assert msg.cseq == (231, "BYE")
    assert msg.headers.get("cseq") == "231 BYE"


def test_leading_crlf_skipped_and_body_without_length() -> None:
    raw = b"\r\n\r\n" + INVITE.replace(b"Content-Length: " + str(len(SDP)).encode() + b"\r\n", b"")
    msg = parse_message(raw)
    assert msg.body == SDP


def test_longer_body_truncated() -> None:
    msg = parse_message(ACK + b"garbage after the message")
    assert msg.body == b""


def test_serialise_recomputes_content_length() -> None:
    msg = parse_message(ACK)
    msg.body = b"hello"
    assert b"Content-Length: 5\r\n\r\nhello" in bytes(msg)
    req = Request("OPTIONS", "sip:a@b", [("Via", "SIP/2.0/UDP h;branch=z9hG4bK1"),
                                         ("From", "<sip:x@y>;tag=1"), ("To", "<sip:a@b>"),
                                         ("Call-ID", "c"), ("CSeq", "1 OPTIONS")])
    out = bytes(req)
    assert out.endswith(b"Content-Length: 0\r\n\r\n")
    again = parse_message(out)
    assert (again.method, again.uri, again.cseq) == ("OPTIONS", "sip:a@b", (1, "OPTIONS"))
    assert list(again.headers)[:5] == list(req.headers)


# -- Headers ---------------------------------------------------------------------------
def test_headers_multidict() -> None:
    h = Headers([("Via", "SIP/2.0/UDP a;branch=z9hG4bK1, SIP/2.0/UDP b"), ("v", "SIP/2.0/UDP c")])
    assert h.get("VIA") == "SIP/2.0/UDP a;branch=z9hG4bK1"
    assert h.get_all("via") == ["SIP/2.0/UDP a;branch=z9hG4bK1", "SIP/2.0/UDP b", "SIP/2.0/UDP c"]
    assert "v" in h and "Via" in h and "Contact" not in h and h.get("x", "d") == "d"
    h.add("Contact", '"Smith, J" <sip:j@x>;q=0.5, <sip:k@y;a=b,c>')
    assert h.get_all("m") == ['"Smith, J" <sip:j@x>;q=0.5', "<sip:k@y;a=b,c>"]
    h.add("Subject", "hello, world")
    assert h.get_all("s") == ["hello, world"]  # not a list header
    c = h.copy()
    h.set("Via", "SIP/2.0/TCP z")
    assert h.get_all("Via") == ["SIP/2.0/TCP z"] and list(h)[0] == ("Via", "SIP/2.0/TCP z")
    assert len(c.get_all("via")) == 3
    h.remove("contact")
    assert "m" not in h and [n for n, _ in h] == ["Via", "Subject"]


def test_parse_cseq() -> None:
    assert parse_cseq("  4711   INVITE ") == (4711, "INVITE")
    for bad in ("", "INVITE", "1", "x INVITE", "2147483648 INVITE", "1 INVITE extra", "1 IN<"):
        with pytest.raises(ParseError):
            parse_cseq(bad)


# -- errors ----------------------------------------------------------------------------
ERRORS = [
    ("empty", b"", 0),
    ("crlf only", b"\r\n\r\n", 4),
    ("no blank line", INVITE.split(b"\r\n\r\n")[0], len(INVITE.split(b"\r\n\r\n")[0])),
    ("bad start line", b"HELLO\r\n" + ACK.split(b"\r\n", 1)[1], 0),
    ("two spaces", ACK.replace(b"ACK sip:", b"ACK  sip:"), 0),
    ("bad version", ACK.replace(b" SIP/2.0\r\n", b" SIP/3.0\r\n", 1), 22),
    ("bad status", OK_200.replace(b"200 OK", b"2000 OK"), 8),
    ("status 700", OK_200.replace(b"200 OK", b"700 OK"), 8),
    ("response version", OK_200.replace(b"SIP/2.0 200", b"SIP/1.0 200"), 0),
    ("uri in brackets", ACK.replace(b"ACK sip:bob@192.0.2.4", b"ACK <sip:bob@192.0.2.4>"), 4),
    ("no colon", ACK.replace(b"Max-Forwards: 70", b"Max-Forwards 70"), ACK.index(b"Max-Forwards")),
    ("continuation first", b"ACK sip:a@b SIP/2.0\r\n folded\r\n" + ACK.split(b"\r\n", 1)[1], 21),
    ("missing Call-ID", ACK.replace(b"Call-ID: a84b4c76e66710@pc33.atlanta.example.com\r\n", b""), None),
    ("missing Via", ACK.replace(b"Via: SIP/2.0/UDP pc33.atlanta.example.com;branch=z9hG4bKnashds9\r\n", b""), None),
    ("bad cseq", ACK.replace(b"CSeq: 314159 ACK", b"CSeq: abc ACK"), ACK.index(b"CSeq")),
    ("cseq mismatch", ACK.replace(b"CSeq: 314159 ACK", b"CSeq: 314159 INVITE"), ACK.index(b"CSeq")),
    ("two call-ids", ACK.replace(b"CSeq:", b"i: other\r\nCSeq:"), ACK.index(b"Call-ID")),
    ("short body", INVITE[:-10], len(INVITE) - 10),
    ("negative length", ACK.replace(b"Content-Length: 0", b"Content-Length: -1"),
     ACK.index(b"Content-Length")),
    ("conflicting lengths", ACK.replace(b"Content-Length: 0", b"Content-Length: 0\r\nl: 3"),
     ACK.index(b"Content-Length")),
]


@pytest.mark.parametrize(("label", "raw", "offset"), ERRORS, ids=[e[0] for e in ERRORS])
def test_errors_raise_parse_error_with_offset(label: str, raw: bytes, offset: int | None) -> None:
    with pytest.raises(ParseError) as info:
        parse_message(raw)
    err = info.value
    assert isinstance(err, ValueError) and err.reason
    if offset is None:  # missing header: reported at the end of the header section
        offset = raw.index(b"\r\n\r\n")
    assert err.offset == offset, err


def test_offset_counts_bytes_not_characters() -> None:
    raw = ACK.replace(b"Max-Forwards: 70", "X-Name: \u00e9\u00e9\r\nbroken".encode())
    with pytest.raises(ParseError) as info:
        parse_message(raw)
    assert raw[info.value.offset:].startswith(b"broken")


def test_non_utf8_octets_survive_round_trip() -> None:
    raw = ACK.replace(b"Max-Forwards: 70", b"X-Bin: \xff\xfe")
    assert bytes(parse_message(raw)) == raw


# -- make_response & identifiers -----------------------------------------------------------
def test_make_response_copies_rfc3261_8_2_6_2_headers() -> None:
    inv = parse_message(INVITE)
    ringing = make_response(inv, 180, to_tag="tt1")
    assert ringing.reason == "Ringing"
    names = [n for n, _ in ringing.headers]
    assert names == ["Via", "Via", "From", "To", "Call-ID", "CSeq", "Record-Route"]
    assert ringing.headers.get_all("via") == inv.headers.get_all("via")
    assert ringing.to_tag == "tt1" and ringing.from_tag == "1928301774"
    assert ringing.cseq == inv.cseq and ringing.call_id == inv.call_id
    assert ringing.headers.get_all("record-route") == inv.headers.get_all("record-route")
    again = parse_message(bytes(ringing))
    assert isinstance(again, Response) and again.status == 180


def test_make_response_details() -> None:
    inv = parse_message(INVITE)
    busy = make_response(inv, 486, to_tag="x", headers=[("Retry-After", "30")])
    assert "Record-Route" not in busy.headers and busy.headers.get("retry-after") == "30"
    assert make_response(inv, 100).to_tag is None
    assert make_response(inv, 488).reason == "Not Acceptable Here"
    assert make_response(inv, 491).reason == "Request Pending"
    assert make_response(inv, 299).reason == "OK"  # class fallback
    assert make_response(inv, 200, "Fine", body=b"x").reason == "Fine"
    dialog = parse_message(ACK)
    kept = make_response(dialog, 200, to_tag="other")
    assert kept.to_tag == "a6c85cf"  # an existing To tag is never replaced
    reg = parse_message(REGISTER)
    assert "Record-Route" not in make_response(reg, 200).headers


def test_identifiers() -> None:
    b1, b2 = new_branch(), new_branch()
    assert b1.startswith("z9hG4bK") and b1 != b2 and len(b1) > 7 + 8
    assert new_tag() != new_tag() and len(new_tag()) >= 8
    cid = new_call_id("host.example.com")
    assert cid.endswith("@host.example.com") and cid != new_call_id("host.example.com")


# -- StreamFramer (RFC 3261 §18.3) -------------------------------------------------------
def test_framer_several_messages_in_one_segment() -> None:
    framer = StreamFramer()
    assert framer.feed(INVITE + b"\r\n\r\n" + ACK + BYE) == [INVITE, ACK, BYE]
    assert framer.buffered == 0


def test_framer_message_split_over_segments() -> None:
    framer = StreamFramer()
    stream = b"\r\n" + INVITE + OK_200 + b"\r\n\r\n" + ACK
    out: list[bytes] = []
    for i in range(0, len(stream), 13):
        out += framer.feed(stream[i:i + 13])
    assert out == [INVITE, OK_200, ACK]
    assert framer.feed(b"\r\n") == [] and framer.buffered == 0


def test_framer_errors() -> None:
    no_length = ACK.replace(b"Content-Length: 0\r\n", b"")
    with pytest.raises(ParseError, match="Content-Length"):
        StreamFramer().feed(no_length)
    with pytest.raises(ParseError, match="over"):
        StreamFramer(max_message=100).feed(b"X" * 101)
    with pytest.raises(ParseError, match="over"):
        StreamFramer(max_message=200).feed(INVITE)
    with pytest.raises(ParseError) as info:
        StreamFramer().feed(ACK.replace(b"Content-Length: 0", b"Content-Length: x"))
    assert info.value.offset > 0


# -- digest (RFC 2617 §3.5) ---------------------------------------------------------------
def test_digest_rfc2617_example() -> None:
    assert digest_response("Mufasa", "Circle Of Life", "testrealm@host.com",
                           "dcd98b7102dd2f0e8b11d0f600bfb0c093", "GET", "/dir/index.html",
                           qop="auth", nc="00000001", cnonce="0a4f113b"
                           ) == "6629fae49393a05397450978507c4ef1"


def test_digest_challenge_and_authorization() -> None:
    value = parse_message(UNAUTHORIZED).headers.get("WWW-Authenticate")
    ch = parse_digest_challenge(value)
    assert ch["scheme"] == "Digest" and ch["realm"] == "atlanta.example.com"
    assert ch["nonce"] == "84f1c1ae6cbe5ua9e0" and ch["qop"] == "auth" and ch["opaque"] == ""
    auth = build_authorization(ch, username="bob", password="zanzibar", method="REGISTER",
                               uri="sip:registrar.biloxi.example.com", cnonce="abc")
    creds = parse_digest_challenge(auth)
    assert creds["response"] == digest_response(
        "bob", "zanzibar", "atlanta.example.com", "84f1c1ae6cbe5ua9e0", "REGISTER",
        "sip:registrar.biloxi.example.com", qop="auth", nc="00000001", cnonce="abc")
    with pytest.raises(ParseError):
        parse_digest_challenge('Digest realm="unterminated')


# -- RFC 4475 torture corpus -------------------------------------------------------------
def _corpus() -> list[tuple[str, str]]:
    with open(CORPUS / "INDEX.tsv", newline="") as f:
        return [(row["name"], row["expected"]) for row in csv.DictReader(f, delimiter="\t")]


@pytest.mark.corpus("rfc4475")
@pytest.mark.parametrize(("name", "expected"), corpus_params(_corpus, "rfc4475", arity=2))
def test_rfc4475_corpus(name: str, expected: str) -> None:
    raw = (CORPUS / f"{name}.dat").read_bytes()
    if expected == "valid":
        msg = parse_message(raw)
        assert parse_message(bytes(msg)) == msg
        for prop in ("call_id", "cseq", "from_tag", "to_tag", "top_via"):
            getattr(msg, prop)
        return
    try:
        msg = parse_message(raw)
    except ParseError:
        return
    for prop in ("call_id", "cseq", "from_tag", "to_tag", "top_via", "vias", "contacts"):
        try:
            getattr(msg, prop)
        except ParseError:
            pass


@pytest.mark.corpus("rfc4475")
def test_rfc4475_specifics() -> None:
    dbl = parse_message((CORPUS / "dblreq.dat").read_bytes())
    assert dbl.method == "REGISTER" and dbl.body == b""
    ws = parse_message((CORPUS / "wsinv.dat").read_bytes())
    assert ws.cseq == (9, "INVITE") and ws.top_via.protocol == "SIP/2.0/UDP"
    assert [v.branch for v in ws.vias] == ["390skdjuw", "z9hG4bK9ikj8", "z9hG4bK30239"]
    assert ws.from_addr.display == 'J Rosenberg \\"' and ws.from_tag == "98asjd8"
    assert ws.headers.get("newfangledheader") == "newfangled value continued newfangled value"
    esc = parse_message((CORPUS / "esc02.dat").read_bytes())
    assert len(esc.headers.get_all("contact")) == 2  # C%6Fntact is another header
    mpart = parse_message((CORPUS / "mpart01.dat").read_bytes())
    assert len(mpart.body) == int(mpart.headers.get("content-length"))
    noreason = parse_message((CORPUS / "noreason.dat").read_bytes())
    assert noreason.status == 100 and noreason.reason == ""
    for name in ("badvers", "clerr", "ncl", "scalar02", "mismatch01", "bigcode", "insuf"):
        with pytest.raises(ParseError):
            parse_message((CORPUS / f"{name}.dat").read_bytes())
