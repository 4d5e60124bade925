"""Fuzz the strict checkers and the lenient reader: any bytes give findings, never a traceback.

The default run uses a few thousand inputs; the ``slow`` variant >= 100,000 each
(``pytest -m slow tests/unit/test_strict_fuzz.py``). Inputs that once crashed a checker
are kept below as explicit regression cases.
"""

from __future__ import annotations


import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from qa.sdp.strict import check_sdp
from qa.sip.lenient import read
from qa.sip.strict import check_message
from tests.corpus import CORPUS  # optional extra seeds: the fuzz asserts without them
from tests.unit.test_sdp_strict import SDP
from tests.unit.test_sip_strict import INVITE, OK

SIP_SEEDS = [INVITE, OK] + sorted((p.read_bytes() for p in CORPUS.glob("rfc*/*.dat")), key=len)[:40]
SDP_SEEDS = [SDP, INVITE[INVITE.index(b"v=0"):]]
TOKENS = [b"\r\n", b"\n", b"\r", b" ", b"\t", b":", b";", b",", b"\"", b"\\", b"<", b">", b"[", b"]",
          b"%", b"%2", b"\x00", b"\xff", b"\xc3", b"=", b"/", b"\r\n ", b"9" * 30, b"@", b"?", b"*",
          b"sip:", b"SIP/2.0", b"z9hG4bK", b"::", b"a=rtpmap:", b"m=", b"c=IN IP6 ", b"-", b"0-"]


@st.composite
def mutated(draw: st.DrawFn, seeds: list[bytes]) -> bytes:
    """A seed with a few edits: byte flips, inserted grammar tokens, deletions, truncation."""
    data = bytearray(draw(st.sampled_from(seeds)))
    for _ in range(draw(st.integers(1, 8))):
        op = draw(st.integers(0, 4))
        pos = draw(st.integers(0, len(data)))
        if op == 0 and data:
            data[min(pos, len(data) - 1)] = draw(st.integers(0, 255))
        elif op == 1:
            data[pos:pos] = draw(st.sampled_from(TOKENS))
        elif op == 2:
            del data[pos:pos + draw(st.integers(1, 12))]
        elif op == 3:
            del data[pos:]
        else:
            data[pos:pos] = draw(st.binary(max_size=8))
    return bytes(data)


def sip_total(data: bytes) -> None:
    problems = check_message(data)
    assert all(p.rule != "sip.internal" for p in problems), problems
    assert all(0 <= p.offset <= len(data) + 4 for p in problems), problems
    msg = read(data)
    if msg is not None:
        assert msg.body == data[msg.body_offset:msg.body_offset + len(msg.body)]


def sdp_total(data: bytes) -> None:
    problems = check_sdp(data)
    assert all(p.rule != "sdp.internal" for p in problems), problems
    assert all(0 <= p.offset <= len(data) for p in problems), problems


def _fuzz(examples: int) -> settings:
    return settings(max_examples=examples, deadline=None, database=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


DEFAULT = _fuzz(1000)
SLOW = _fuzz(100_000)
binary = st.binary(max_size=400)


@DEFAULT
@given(st.one_of(binary, mutated(SIP_SEEDS)))
def test_sip_never_raises(data: bytes) -> None:
    sip_total(data)


@DEFAULT
@given(st.one_of(binary, mutated(SDP_SEEDS)))
def test_sdp_never_raises(data: bytes) -> None:
    sdp_total(data)


@pytest.mark.slow
@SLOW
@given(st.one_of(binary, mutated(SIP_SEEDS)))
def test_sip_never_raises_at_scale(data: bytes) -> None:
    sip_total(data)


@pytest.mark.slow
@SLOW
@given(st.one_of(binary, mutated(SDP_SEEDS)))
def test_sdp_never_raises_at_scale(data: bytes) -> None:
    sdp_total(data)


#: Inputs that crashed a checker during development (kept as regressions).
REGRESSIONS: list[bytes] = [
    b"SIP/2.0 200 OK\r\n\r\n",
    b"INVITE sip:a@[::1 SIP/2.0\r\nVia: SIP/2.0/UDP [::1\r\n\r\n",
    b"INVITE sip:a@b SIP/2.0\r\nTo: <\r\nFrom: \"\r\nContact: ,,\r\n\r\n",
]


@pytest.mark.parametrize("data", REGRESSIONS)
def test_regressions(data: bytes) -> None:
    sip_total(data)
    sdp_total(data)
