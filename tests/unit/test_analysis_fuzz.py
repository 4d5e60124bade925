"""Hypothesis over the engine: random and mutated captures never give a traceback.

Whatever the bytes, ``analyze`` returns a report (or raises ``PcapError`` at open for a
file that is not a capture). The default run is small; the ``slow`` variant runs
>= 100,000 examples.
"""

from __future__ import annotations

import struct
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from qa.analysis.engine import Analyzer, analyze
from qa.capture import PcapError
from qa.capture.model import Payload
from qa.capture.writer import udp_packet, write_pcap

from tests.unit.test_analysis_engine import build_call_pcap

with tempfile.TemporaryDirectory(prefix="voipqa-fuzz-") as _tmp:
    SEED_BYTES = build_call_pcap(Path(_tmp) / "seed.pcap", digits="5").read_bytes()
SEED_FRAMES: list[bytes] = []
_pos = 24
while _pos + 16 <= len(SEED_BYTES):
    _incl = struct.unpack_from("<I", SEED_BYTES, _pos + 8)[0]
    SEED_FRAMES.append(SEED_BYTES[_pos + 16:_pos + 16 + _incl])
    _pos += 16 + _incl
SIP_PAYLOADS = [f[28:] for f in SEED_FRAMES if b"SIP/2.0" in f]


def _mutate(data: bytes, edits: list[tuple[int, int]]) -> bytes:
    buf = bytearray(data)
    for pos, value in edits:
        if buf:
            buf[pos % len(buf)] = value
    return bytes(buf)


def _check_file(tmp: Path, data: bytes) -> None:
    tmp.write_bytes(data)
    try:
        report = analyze(tmp)
    except PcapError:
        return
    assert report.packets >= 0 and all(f.severity in ("error", "warning", "info") for f in report.findings)
    assert not [f for f in report.findings if f.rule.endswith("internal-error")], "the analyser hit a bug"


edits = st.lists(st.tuples(st.integers(0, 1 << 20), st.integers(0, 255)), max_size=12)


def _file_property(data_edits, cut):
    with tempfile.TemporaryDirectory() as tmp:
        data = _mutate(SEED_BYTES, data_edits)
        _check_file(Path(tmp) / "m.pcap", data[:cut] if cut else data)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(edits, st.integers(0, len(SEED_BYTES)))
def test_mutated_pcap_files(data_edits, cut):
    _file_property(data_edits, cut)


def _payload_property(chunks):
    analyzer = Analyzer("fuzz")
    t = 1000.0
    for i, (kind, data) in enumerate(chunks):
        t += 0.5
        transport = ("udp", "tcp", "ws")[kind % 3]
        analyzer.feed(Payload(i + 1, t, "10.0.0.1", 5060 + kind % 2, "10.0.0.2", 6000 + kind % 4,
                              transport, data, 4))
    report = analyzer.finish()
    internal = [f for f in report.findings if f.rule == "analysis.internal-error"]
    assert internal == [], internal   # a bug the engine's safety net caught is still a bug


sip_mutants = st.builds(_mutate, st.sampled_from(SIP_PAYLOADS), edits)
payloads = st.lists(st.tuples(st.integers(0, 7), st.one_of(st.binary(max_size=300), sip_mutants)),
                    max_size=12)


@settings(max_examples=150, deadline=None)
@given(payloads)
def test_random_payloads_through_the_engine(chunks):
    _payload_property(chunks)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.binary(max_size=200), max_size=8))
def test_random_udp_in_a_pcap(blobs):
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "r.pcap"
        write_pcap(path, [(1000.0 + i, udp_packet("10.0.0.1", 5060, "10.0.0.2", 5060, b))
                          for i, b in enumerate(blobs)])
        _check_file(path, path.read_bytes())


@pytest.mark.slow
@settings(max_examples=100_000, deadline=None, suppress_health_check=list(HealthCheck))
@given(payloads)
def test_random_payloads_at_scale(chunks):
    _payload_property(chunks)
