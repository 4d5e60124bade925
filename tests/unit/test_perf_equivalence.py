"""The fast paths of the SIP checkers give exactly what the reference paths give.

``qa.sip.strict`` splits plain (CRLF, unfolded) header sections without the line regex and
memoises what a start line or a header line amounts to; ``_Checker(data, fast=False)`` is
the reference that checks every line with the regex, at its real offsets. ``qa.sip.lenient``
reads unfolded header sections through a per-line memo; :func:`lenient._wanted` over the
full header list is its reference. Both are compared on the pcap corpus, the RFC 4475 /
RFC 5118 torture messages and fuzzed variants of them, each input checked twice so that
the second pass runs on memo hits.
"""

from __future__ import annotations


import pytest
from hypothesis import HealthCheck, given, settings

from qa.capture import CaptureReader
from qa.capture.model import Payload, PcapError
from qa.sip import lenient, strict
from tests.corpus import CORPUS
from tests.unit.test_strict_fuzz import SIP_SEEDS, mutated


def _pcap_messages() -> list[bytes]:
    out: list[bytes] = []
    for path in sorted((CORPUS / "pcaps").glob("*.*")):
        if path.suffix not in (".pcap", ".pcapng", ".cap"):
            continue
        try:
            out += [item.data for item in CaptureReader(path) if type(item) is Payload]
        except PcapError:
            continue  # not a pcap/pcapng (the NetMon capture)
    return out


def _torture_messages() -> list[bytes]:
    return [p.read_bytes() for p in sorted(CORPUS.glob("rfc*/*.dat"))]


MESSAGES = _torture_messages() + _pcap_messages()


def _problems(problems: list) -> list[tuple]:
    return [(p.offset, p.rule, p.reason, p.severity) for p in problems]


def _same_strict(data: bytes) -> None:
    reference = _problems(strict._Checker(data, fast=False).run())
    assert _problems(strict.check_message(data)) == reference
    assert _problems(strict.check_message(data)) == reference  # memo hits this time


def _reading(msg: lenient.LenientMessage | None) -> tuple | None:
    if msg is None:
        return None
    return (msg.kind, msg.start_line, msg.method, msg.status, msg.reason, msg.call_id, msg.cseq,
            msg.cseq_method, msg.from_tag, msg.to_tag, msg.branch, msg.via_count,
            msg.content_type, msg.body, msg.body_offset, msg.headers)


def _same_lenient(data: bytes) -> None:
    first = _reading(lenient.read(data))
    assert _reading(lenient.read(data)) == first  # memo hits this time
    msg = lenient.read(data)
    if msg is not None and not any(line[:1] in (" ", "\t") for line in msg.lines[1:]):
        assert lenient._wanted_unfolded(msg.lines) == lenient._wanted(msg.headers)


@pytest.mark.corpus("rfc4475")
@pytest.mark.corpus("pcaps")
def test_corpus_is_there() -> None:
    assert len(MESSAGES) > 100


@pytest.mark.corpus("rfc4475")
@pytest.mark.corpus("pcaps")
def test_strict_fast_path_matches_reference() -> None:
    for data in MESSAGES:
        _same_strict(data)


@pytest.mark.corpus("rfc4475")
@pytest.mark.corpus("pcaps")
def test_lenient_memo_matches_reference() -> None:
    for data in MESSAGES:
        _same_lenient(data)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated(SIP_SEEDS + MESSAGES[-20:]))
def test_fuzzed_messages_match_reference(data: bytes) -> None:
    _same_strict(data)
    _same_lenient(data)


def test_line_memo_keeps_context_apart() -> None:
    """A From without tag is a warning in a request only; the memo must not mix them."""
    line = b"From: <sip:a@example.com>\r\n"
    rest = (b"To: <sip:b@example.com>\r\nCall-ID: x\r\nCSeq: 1 OPTIONS\r\n"
            b"Via: SIP/2.0/UDP h;branch=z9hG4bKx\r\nMax-Forwards: 70\r\n\r\n")
    request = b"OPTIONS sip:b@example.com SIP/2.0\r\n" + line + rest
    response = b"SIP/2.0 200 OK\r\n" + line + rest
    for data in (request, response, request, response):
        _same_strict(data)
    assert any(p.rule == "sip.from.tag" for p in strict.check_message(request))
    assert not any(p.rule == "sip.from.tag" for p in strict.check_message(response))


@pytest.mark.parametrize("branch, tag", [
    ("z9hG4bK255.255.255.255", "1"),      # the broadcast address inside an id: still a warning
    ("z9hG4bK", "2"),                     # only the cookie: still a warning (the real value)
    ("z9hG4bKab.cd", "x[y"),              # a '[' in a tag: not shared
    ("z9hG4bK-1-0", "abc;tag=def"),       # two tags
    ("z9hG4bKa.b", "a_b.c-d"),            # shared with the clean sibling
])
def test_lines_sharing_a_normal_form_are_each_checked_as_themselves(branch: str, tag: str) -> None:
    """Via/From/To lines that differ only in their branch or tag share a clean line's check
    (strict._normal_form); each must still find what the reference finds on it."""
    def message(b: str, t: str) -> bytes:
        return (f"INVITE sip:b@example.com SIP/2.0\r\nVia: SIP/2.0/UDP h;branch={b}\r\n"
                f"From: <sip:a@example.com>;tag={t}\r\nTo: <sip:b@example.com>;tag={t}\r\n"
                f"Call-ID: x\r\nCSeq: 1 INVITE\r\nContact: <sip:a@h>\r\nMax-Forwards: 70\r\n\r\n").encode()
    clean = message("z9hG4bKqqqqqqq" + "q" * (len(branch) - 14) if len(branch) > 14 else "z9hG4bKqq",
                    "q" * len(tag))
    _same_strict(clean)
    _same_strict(message(branch, tag))
    if "255.255.255.255" in branch:
        assert any(p.rule == "sip.via.broadcast" for p in strict.check_message(message(branch, tag)))
    if branch == "z9hG4bK":
        assert any(p.rule == "sip.via.branch" for p in strict.check_message(message(branch, tag)))
