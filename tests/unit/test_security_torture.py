"""``qa.security.torture`` without a lab: each crafted message has the defect its name says,
the generators are reproducible, a torture directory is read (or refused) clearly, and the
verdict follows the answers and the witnesses."""

from __future__ import annotations

import re
import socket
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from qa.config import SecurityFile
from qa.errors import BadInput, ParseError
from qa.sdp import SessionDescription
from qa.security import torture
from qa.security import torture_messages as messages
from qa.security.model import AttackResult
from qa.security.target import SecurityTarget
from qa.security.torture_messages import SPECS, Outcome, judge, read_corpus, record_checks, record_witnesses
from qa.sip import Request, make_response, parse_message
from qa.sip.strict import check_message
from tests.corpus import CORPUS

LOCAL = ("127.0.0.65", 5070)


def _target(**kw: Any) -> SecurityTarget:
    return SecurityTarget("lab", "127.0.0.1", 5060, "voipqa.lab", {"1001": "pw-1001"}, SecurityFile(), **kw)


def _built(name: str) -> tuple[Request, bytes]:
    spec = next(s for s in SPECS if s.name == name)
    base = torture._Session(_target(), lambda line: None, LOCAL[0]).base(spec, LOCAL, spec.transport)
    return base, spec.build(base)


def _parse_error(data: bytes) -> str:
    with pytest.raises(ParseError) as exc:
        parse_message(data)
    return exc.value.reason


def _rules(data: bytes) -> set[str]:
    return {p.rule for p in check_message(data) if p.severity == "error"}


def _head(data: bytes) -> bytes:
    return data.split(b"\r\n\r\n", 1)[0]


def _header_lines(data: bytes, name: str) -> list[bytes]:
    return [line for line in _head(data).split(b"\r\n")[1:] if line.lower().startswith(name.lower().encode() + b":")]


# -- each crafted message is what its name says ------------------------------------------------------

DEFECTS: dict[str, Callable[[Request, bytes], None]] = {
    "auth-cseq-method": lambda r, d: _assert("does not match" in _parse_error(d)),
    "cseq-method-mismatch": lambda r, d: _assert("sip.cseq.method-mismatch" in _rules(d)),
    "auth-content-length-larger": lambda r, d: _assert("Content-Length says" in _parse_error(d)),
    "content-length-larger": lambda r, d: _assert("sip.content-length.mismatch" in _rules(d)),
    "content-length-negative": lambda r, d: _assert(_header_lines(d, "Content-Length") == [b"Content-Length: -42"]
                                                    and "bad Content-Length" in _parse_error(d)),
    "auth-broken-sdp": lambda r, d: _broken_sdp(d),
    "auth-conflicting-call-id": lambda r, d: _assert("more than one Call-ID" in _parse_error(d)),
    "auth-conflicting-to": lambda r, d: _assert("more than one To" in _parse_error(d)),
    "auth-two-to-tags": lambda r, d: _assert(len(re.findall(rb";tag=", _header_lines(d, "To")[0])) == 2),
    "auth-expires-not-a-number": lambda r, d: _assert(_header_lines(d, "Expires") == [b"Expires: soon"]
                                                      and "sip.header.syntax" in _rules(d)),
    "auth-max-forwards-300": lambda r, d: _assert("sip.max-forwards" in _rules(d)),
    "max-forwards-300": lambda r, d: _assert(_header_lines(d, "Max-Forwards") == [b"Max-Forwards: 300"]),
    "cseq-overflow": lambda r, d: _assert("sip.value.oversized" in _rules(d) and str(2**65).encode() in d),
    "unterminated-display-name": lambda r, d: _assert(any("unterminated quoted string" in p.reason
                                                          for p in check_message(d))),
    "missing-call-id": lambda r, d: _assert("missing mandatory header Call-ID" in _parse_error(d)),
    "sip-version-7": lambda r, d: _assert(d.startswith(b"INVITE sip:") and d.split(b"\r\n")[0].endswith(b" SIP/7.0")
                                          and "unsupported SIP version" in _parse_error(d)),
    "bad-utf8-display-name": lambda r, d: _bad_utf8(d),
    "nul-in-header": lambda r, d: _assert(b"\x00" in _head(d) and "sip.header.syntax" in _rules(d)),
    "oversized-header-udp": lambda r, d: _assert(60 * 1024 < len(d) <= messages.MAX_UDP
                                                 and max(len(x) for x in _head(d).split(b"\r\n")) > 60 * 1024),
    "oversized-header-tcp": lambda r, d: _assert(len(d) > 100 * 1024 and parse_message(d).method == "INVITE"),
    "huge-content-length-tcp": lambda r, d: _assert(
        _header_lines(d, "Content-Length") == [f"Content-Length: {2**31 - 1}".encode()]
        and "Content-Length says" in _parse_error(d)),
    "garbage-random": lambda r, d: _assert(d == messages.garbage(messages.SEED, 1024) and bool(_parse_error(d))),
    "garbage-after-request-line": lambda r, d: _assert(d.startswith(f"INVITE {r.uri} SIP/2.0\r\n".encode())
                                                       and bool(_parse_error(d))),
    "tcp-byte-by-byte": lambda r, d: _valid(d, "OPTIONS", most=400),
    "udp-fragments": lambda r, d: _valid(d, "OPTIONS", most=messages.FRAGMENTED_SIZE,
                                         least=torture.FRAGMENT_SIZE * 2 + 1),
}


def _assert(condition: bool) -> None:
    assert condition


def _broken_sdp(data: bytes) -> None:
    message = parse_message(data)          # framed right: only the body is broken
    assert message.headers.get("Content-Type") == "application/sdp"
    with pytest.raises(ParseError):
        SessionDescription.parse(message.body)


def _bad_utf8(data: bytes) -> None:
    [line] = _header_lines(data, "From")
    with pytest.raises(UnicodeDecodeError):
        line.decode("utf-8")
    assert "sip.encoding" in _rules(data)


def _valid(data: bytes, method: str, *, most: int, least: int = 0) -> None:
    message = parse_message(data)
    assert message.method == method and least <= len(data) <= most
    assert not _rules(data)


def test_every_crafted_message_has_a_defect_test() -> None:
    assert {s.name for s in SPECS} == set(DEFECTS)
    assert len({s.name for s in SPECS}) == len(SPECS)


@pytest.mark.parametrize("name", [s.name for s in SPECS])
def test_crafted_message_has_the_defect_its_name_says(name: str) -> None:
    base, data = _built(name)
    DEFECTS[name](base, data)


def test_malformed_invites_go_to_the_reject_number_from_the_customer() -> None:
    base, _ = _built("auth-cseq-method")
    assert base.method == "INVITE" and base.uri == f"sip:{SecurityFile().numbers.reject}@voipqa.lab"
    assert base.from_addr.uri == "sip:1001@voipqa.lab"
    assert (base.headers.get("Call-ID") or "").startswith("torture-auth-cseq-method-")


@pytest.mark.parametrize("name", [s.name for s in SPECS if s.authenticated])
def test_authenticated_variants_keep_the_request_line_and_credentials(name: str) -> None:
    """The digest covers the method and Request-URI (RFC 2617 §3.2.2.5): a mangle must keep
    both and the Proxy-Authorization, or the malformed INVITE is merely challenged again."""
    spec = next(s for s in SPECS if s.name == name)
    base, _ = _built(name)
    base.headers.add("Proxy-Authorization", 'Digest username="1001", nonce="n", response="r"')
    data = spec.build(base)
    assert data.split(b"\r\n")[0] == f"INVITE {base.uri} SIP/2.0".encode()
    assert _header_lines(data, "Proxy-Authorization") == [b'Proxy-Authorization: Digest username="1001", nonce="n", '
                                                          b'response="r"']


def test_authenticated_variants_are_sent_first() -> None:
    """What they set going (100 Trying, then the carrier's or the timeout's answer) runs
    while the rest is sent, so the attack stays short."""
    authenticated = [s.name for s in SPECS if s.authenticated]
    assert [s.name for s in SPECS[:len(authenticated)]] == authenticated
    assert {"auth-cseq-method", "auth-content-length-larger", "auth-broken-sdp"} <= set(authenticated)


# -- generators ---------------------------------------------------------------------------------------

def test_garbage_is_reproducible_and_sized() -> None:
    assert messages.garbage(7, 512) == messages.garbage(7, 512)
    assert len(messages.garbage(7, 512)) == 512
    assert messages.garbage(7, 64) != messages.garbage(8, 64)


MESSAGE = b"OPTIONS sip:x SIP/2.0\r\nVia: a\r\nCall-ID: c\r\nContent-Length: 3\r\n\r\nabc"


def test_set_header_replaces_removes_and_appends() -> None:
    assert messages.set_header(MESSAGE, "call-id", "d", b"e\x00") == (
        b"OPTIONS sip:x SIP/2.0\r\nVia: a\r\ncall-id: d\r\ncall-id: e\x00\r\nContent-Length: 3\r\n\r\nabc")
    assert b"Call-ID" not in messages.set_header(MESSAGE, "Call-ID")
    assert messages.set_header(MESSAGE, "Subject", "s").endswith(b"Content-Length: 3\r\nSubject: s\r\n\r\nabc")


def test_content_length_generators() -> None:
    assert _header_lines(messages.with_content_length(MESSAGE, 99), "Content-Length") == [b"Content-Length: 99"]
    assert messages.with_content_length(MESSAGE, "-1").endswith(b"Content-Length: -1\r\n\r\nabc")
    assert messages.with_body(MESSAGE, b"hello").endswith(b"Content-Length: 5\r\n\r\nhello")
    assert len(messages.padded(MESSAGE, 3000)) == 3000


def test_call_ids_of_reads_every_call_id_line() -> None:
    assert torture.call_ids_of(MESSAGE) == ["c"]
    assert torture.call_ids_of(b"INVITE x SIP/2.0\r\ni: one\r\nCALL-ID:  two \r\n\r\nCall-ID: body") == ["one", "two"]
    assert torture.call_ids_of(messages.garbage(1, 100)) == []


def test_import_does_not_load_scapy() -> None:
    code = "import sys, qa.security.torture; sys.exit(any(m.split('.')[0] == 'scapy' for m in sys.modules))"
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0


def test_fragments_not_sent_without_root(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torture.os, "geteuid", lambda: 1000)
    session = torture._Session(_target(), lambda line: None, "127.0.0.65")
    spec = next(s for s in SPECS if s.mode == "fragments")
    session.send_spec(spec)
    [out] = session.outcomes
    assert out.sent == 0 and out.note == "fragmented UDP: not sent (raw sockets need root)"
    result = AttackResult("torture")
    record_checks(result, session.outcomes)
    assert [c.name for c in result.checks] == ["health"]          # no check for what was not sent
    assert torture._evidence(session, [], None, 0.0)["not_sent"] == [out.note]


# -- a torture directory -----------------------------------------------------------------------------

INDEX = "name\trfc_section\texpected\tdescription\na\t1\tinvalid-should-reject\tbad\nb\t2\tvalid\tgood\n"


def _corpus_dir(tmp_path: Path, index: str | None = INDEX, files: dict[str, bytes] | None = None) -> Path:
    for name, data in (files if files is not None else {"a": b"A", "b": b"B", "c": b"C"}).items():
        (tmp_path / f"{name}.dat").write_bytes(data)
    if index is not None:
        (tmp_path / "INDEX.tsv").write_text(index)
    return tmp_path


def test_corpus_reader_joins_files_and_index(tmp_path: Path) -> None:
    messages = read_corpus(_corpus_dir(tmp_path))
    assert [(m.name, m.data, m.expected, m.judged) for m in messages] == [
        ("a", b"A", "invalid-should-reject", True), ("b", b"B", "valid", False), ("c", b"C", "", False)]
    assert messages[0].section == "1" and messages[0].description == "bad"


def test_corpus_without_index_judges_nothing(tmp_path: Path) -> None:
    assert [m.judged for m in read_corpus(_corpus_dir(tmp_path, index=None))] == [False, False, False]


@pytest.mark.parametrize(("index", "files", "error"), [
    (INDEX, {}, "no \\*.dat message"),
    ("name\tdescription\na\tx\n", None, "no column 'expected'"),
    ("name\texpected\na\tvalid\na\tinvalid\n", None, "'a' is listed twice"),
    ("name\texpected\n\tvalid\n", None, "line 2: empty name"),
    ("name\texpected\nzz\tvalid\n", None, "'zz' has no zz.dat"),
    (INDEX, {"a": b"", "b": b"B"}, "a.dat: empty"),
    (INDEX, {"a": b"x", "b": b"y" * 70000}, "more than one UDP datagram"),
])
def test_corpus_reader_refuses_bad_input_clearly(tmp_path: Path, index: str, files: dict[str, bytes] | None,
                                                 error: str) -> None:
    with pytest.raises(BadInput, match=error):
        read_corpus(_corpus_dir(tmp_path, index, files))


def test_corpus_reader_refuses_a_missing_directory_and_too_many(tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(BadInput, match="not a directory"):
        read_corpus(tmp_path / "nowhere")
    monkeypatch.setattr(messages, "MAX_CORPUS", 2)
    with pytest.raises(BadInput, match="3 messages, at most 2"):
        read_corpus(_corpus_dir(tmp_path, index=None))


@pytest.mark.corpus("rfc4475")
def test_rfc4475_corpus_reads() -> None:
    messages = read_corpus(CORPUS / "rfc4475")
    assert len(messages) == 49
    judged = {m.name for m in messages if m.judged}
    assert {"clerr", "ncl", "badvers", "mismatch01"} <= judged and "wsinv" not in judged


# -- the verdict ---------------------------------------------------------------------------------------

@pytest.mark.parametrize(("statuses", "ok", "why"), [
    ([], True, "dropped"),
    ([400], True, "answered 400"),
    ([100, 400], True, "answered 400"),
    ([407], True, "answered 407"),
    ([200], False, "not a 4xx"),
    ([100, 200], False, "not a 4xx"),
    ([180, 486], False, "answered 180"),
    ([183], False, "answered 183"),
    ([100], False, "taken on"),
    ([100, 503], False, "answered 503"),
    ([302], False, "not a 4xx"),
])
def test_judge_malformed(statuses: list[int], ok: bool, why: str) -> None:
    verdict, detail = judge(statuses)
    assert verdict is ok and why in detail


def test_judge_extra_refusals_and_valid_messages() -> None:
    assert judge([505], also_ok={505})[0] and not judge([505])[0]
    assert judge([200], expect="answer") == (True, "answered 200")
    assert not judge([400], expect="answer")[0] and not judge([], expect="answer")[0]
    assert judge([200], expect="none")[0]


def _outcome(name: str, replies: list[tuple[int, str]], **kw: Any) -> Outcome:
    out = Outcome(name, "udp", sent=100, replies=replies, health=True, health_detail="ok",
                  call_ids=[f"cid-{name}"])
    for key, value in kw.items():
        setattr(out, key, value)
    return out


def test_a_200_to_a_malformed_message_fails_rejected() -> None:
    result = AttackResult("torture")
    record_checks(result, [_outcome("cseq-method-mismatch", [(200, "OK")]), _outcome("missing-call-id", [])])
    checks = {c.name: c for c in result.checks}
    assert not checks["rejected"].ok and checks["health"].ok
    assert checks["rejected"].detail == "cseq-method-mismatch: 200 OK (answered 200, not a 4xx)"
    assert result.verdict == "fail"


def test_refused_messages_pass_and_say_how() -> None:
    result = AttackResult("torture")
    record_checks(result, [_outcome("a", [(100, "Trying"), (400, "Bad Request")]), _outcome("b", []),
                           _outcome("tcp-byte-by-byte", [(200, "OK")], expect="answer"),
                           _outcome("corpus-valid", [(200, "OK")], expect="none")])
    assert result.verdict == "pass"
    details = {c.name: c.detail for c in result.checks}
    assert details["rejected"] == "all 2 malformed messages refused (1 answered 4xx, 1 dropped)"
    assert details["reassembled"] == "tcp-byte-by-byte: 200 OK"


def test_unhealthy_after_a_message_fails_health() -> None:
    result = AttackResult("torture")
    record_checks(result, [_outcome("garbage-random", [], health=False, health_detail="down: kamailio")])
    [health] = [c for c in result.checks if c.name == "health"]
    assert not health.ok and health.detail == "unhealthy after garbage-random (down: kamailio)"


def test_witnesses_name_the_messages_that_got_through() -> None:
    outcomes = [_outcome("auth-cseq-method", [(100, "Trying"), (486, "Busy Here")]), _outcome("nul-in-header", [])]
    target = _target(carrier_rows=lambda ids: [{"call_id": "cid-auth-cseq-method", "to": "x"}],
                     billed_rows=lambda ids: [{"call_id": "unrelated"}],
                     has_carrier_witness=True, has_billing_witness=True)
    result = AttackResult("torture")
    record_witnesses(target, result, outcomes)
    checks = {c.name: c for c in result.checks}
    assert not checks["carrier"].ok and checks["carrier"].detail == "reached the carrier: auth-cseq-method"
    assert checks["billing"].ok and outcomes[0].reached_carrier and not outcomes[1].reached_carrier
    assert outcomes[0].to_evidence()["reached_carrier"] is True


def test_no_witness_no_check_but_evidence() -> None:
    result = AttackResult("torture")
    record_witnesses(_target(), result, [_outcome("a", [])])
    assert result.checks == []
    assert result.evidence["carrier"].startswith("no carrier witness")
    assert result.evidence["billing"].startswith("no billing witness")


def test_evidence_of_one_message() -> None:
    out = _outcome("auth-broken-sdp", [(100, "Trying"), (400, "Bad SDP")], authenticated=True)
    evidence = out.to_evidence()
    assert evidence["reply"] == "100 Trying, 400 Bad SDP" and evidence["health_after"] == "ok"
    assert evidence["bytes"] == 100 and evidence["ok"] is True and evidence["authenticated"] is True
    assert _outcome("x", []).to_evidence()["reply"] == "dropped"


# -- the wire, against a fake platform on loopback ---------------------------------------------------------

@pytest.fixture
def fake_platform() -> Iterator[tuple[int, list[bytes]]]:
    """A UDP 'platform' on 127.0.0.1: 200 to OPTIONS (the health probe), 100 then 486 to an
    INVITE, silence to anything it cannot parse; it keeps what it received."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.settimeout(0.05)
    seen: list[bytes] = []
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                data, peer = sock.recvfrom(65535)
            except OSError:
                continue
            seen.append(data)
            try:
                req = parse_message(data)
            except ParseError:
                continue
            if not isinstance(req, Request) or req.method == "ACK":
                continue
            codes = [(200, "OK")] if req.method == "OPTIONS" else [(100, "Trying"), (486, "Busy Here")]
            for code, reason in codes:
                sock.sendto(bytes(make_response(req, code, reason, to_tag="t" if code > 100 else None)), peer)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield sock.getsockname()[1], seen
    stop.set()
    thread.join(1)
    sock.close()


def test_send_spec_collects_answers_acks_and_probes_health(fake_platform: tuple[int, list[bytes]]) -> None:
    port, seen = fake_platform
    target = SecurityTarget("fake", "127.0.0.1", port, "voipqa.lab", {"1001": "pw"}, SecurityFile())
    session = torture._Session(target, lambda line: None, "127.0.0.1")
    session.send_spec(next(s for s in SPECS if s.name == "nul-in-header"))
    session.drain()
    [out] = session.outcomes
    assert out.statuses == [100, 486] and out.health is True and out.sent > 0
    assert out.verdict() == (True, "answered 486")
    assert any(data.startswith(b"ACK ") for data in seen)
    assert out.call_ids and out.call_ids[0].startswith("torture-nul-in-header-")
