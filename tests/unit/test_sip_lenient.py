"""qa.sip.lenient: a forgiving, fast reading for call correlation."""

from __future__ import annotations


import pytest

from qa.sip.lenient import LenientMessage, read
from tests.corpus import CORPUS
from tests.unit.test_sip_strict import INVITE, OK, SDP


def test_request_fields() -> None:
    m = read(INVITE)
    assert isinstance(m, LenientMessage) and m.is_request
    assert (m.kind, m.method, m.status, m.reason) == ("request", "INVITE", None, None)
    assert m.start_line == "INVITE sip:bob@biloxi.example.com SIP/2.0"
    assert m.call_id == "a84b4c76e66710@pc33.atlanta.example.com"
    assert (m.cseq, m.cseq_method) == (314159, "INVITE")
    assert (m.from_tag, m.to_tag, m.branch, m.via_count) == ("1928301774", None, "z9hG4bKnashds8", 1)
    assert m.content_type == "application/sdp" and m.body == SDP
    assert INVITE[m.body_offset:] == SDP
    assert m.headers[0] == ("Via", "SIP/2.0/UDP pc33.atlanta.example.com:5060;branch=z9hG4bKnashds8;rport")


def test_response_compact_forms() -> None:
    m = read(OK)
    assert (m.kind, m.status, m.reason, m.method) == ("response", 200, "OK", "INVITE")
    assert (m.from_tag, m.to_tag, m.call_id, m.branch) == ("19", "a6c85cf", "a84b4c76e66710", "z9hG4bKnashds10")
    names = [n for n, _ in m.headers]
    assert names == ["Via", "To", "From", "Call-ID", "CSeq", "Content-Length"]


def test_forgiving() -> None:
    data = (b"INVITE  sip:a@b; lr SIP/2.0  \n"
            b"VIA: SIP/2.0/UDP h;branch=z9hG4bK1, SIP/2.0/UDP g;branch=z9hG4bK2\n"
            b"from: <sip:a@b;tag=inuri>;tag=real\nto:\n <sip:c@d>\n ;tag=folded\n"
            b"Call-ID: x\nCSeq: 99999999999999 INVITE\nContent-Length: 2\nbroken line\n\nabcd")
    m = read(data)
    assert m.method == "INVITE" and m.from_tag == "real" and m.to_tag == "folded"
    assert m.via_count == 2 and m.branch == "z9hG4bK1" and m.cseq is None and m.cseq_method == "INVITE"
    assert m.body == b"ab" and ("To", "<sip:c@d> ;tag=folded") in m.headers
    assert read(b"SIP/2.0 4294967301 big\r\n\r\n").status == 4294967301


@pytest.mark.parametrize("data", [b"", b"\r\n", b"hello world", b"GET / HTTP/1.1\r\n\r\n", b"\xff\xfe"])
def test_not_sip(data: bytes) -> None:
    assert read(data) is None


@pytest.mark.corpus("rfc4475")
def test_reads_every_torture_message() -> None:
    for path in sorted(CORPUS.glob("rfc*/*.dat")):
        m = read(path.read_bytes())
        assert m is not None and m.cseq_method, path.name
        assert m.call_id or path.stem == "insuf", path.name
