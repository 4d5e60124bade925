"""Reading and checking in a second process gives the report one process gives
(qa.analysis.parallel): same findings, counters, calls and stats, on every corpus capture
and on captures with malformed SIP, TCP, damage and a truncated end."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from qa.analysis.engine import analyze
from qa.analysis.parallel import MIN_BYTES, may_be_sip, worth_parallel
from qa.capture.model import Payload, PcapError
from tests.corpus import CORPUS as SHARED_CORPUS, corpus_params
from tests.unit.test_analysis_engine import build_call_pcap

CORPUS = SHARED_CORPUS / "pcaps"


def _outcome(path: Path, parallel: bool, **kwargs) -> object:
    try:
        return dataclasses.asdict(analyze(path, parallel=parallel, **kwargs))
    except PcapError as exc:          # not a capture: the same one line, before any worker
        return str(exc)


def _same(path: Path, **kwargs) -> None:
    assert _outcome(path, True, **kwargs) == _outcome(path, False, **kwargs)


def test_same_report_on_a_call_with_malformed_sip_and_media(tmp_path):
    _same(build_call_pcap(tmp_path / "bad.pcap", malformed=True))
    _same(build_call_pcap(tmp_path / "ow.pcap", one_way=True, bye=False, digits=""))


def test_same_report_on_a_truncated_capture(tmp_path):
    full = build_call_pcap(tmp_path / "full.pcap").read_bytes()
    cut = tmp_path / "cut.pcap"
    cut.write_bytes(full[: len(full) * 2 // 3])
    one = analyze(cut, parallel=False)
    assert "pcap.truncated" in one.rule_counts    # the damage is in the report...
    _same(cut)                                    # ...and the same from the worker


def test_same_report_with_calls_kept_and_a_raw_call(tmp_path):
    path = build_call_pcap(tmp_path / "c.pcap")
    call_id = analyze(path).summaries[0].call_id
    _same(path, keep_calls=5, keep_raw_for=call_id)


@pytest.mark.parametrize("name", corpus_params(
    lambda: sorted(p.name for p in CORPUS.iterdir() if p.suffix in (".pcap", ".pcapng", ".cap")),
    "pcaps"))
def test_same_report_on_every_corpus_capture(name):
    _same(CORPUS / name)


def test_calls_reach_on_call_in_the_same_order(tmp_path):
    path = build_call_pcap(tmp_path / "c.pcap")
    seen: dict[bool, list[str]] = {False: [], True: []}
    for parallel in (False, True):
        analyze(path, parallel=parallel, on_call=lambda s, p=parallel: seen[p].append(s.call_id))
    assert seen[True] == seen[False] and seen[True]


def test_the_worker_checks_everything_the_engine_reads_as_sip():
    """Speculation is a superset: SIP start lines, text on any port, every TCP message;
    not RTP, STUN or keep-alives (those the engine never reads as SIP)."""
    def udp(data: bytes, transport: str = "udp") -> Payload:
        return Payload(1, 0.0, "127.0.0.1", 5060, "127.0.0.1", 5060, transport, data, 4)

    assert may_be_sip(udp(b"INVITE sip:a@b SIP/2.0\r\n\r\n"))
    assert may_be_sip(udp(b"SIP/2.0 200 OK\r\n\r\n"))
    assert may_be_sip(udp(b"GARBAGE on a SIP port"))
    assert may_be_sip(udp(b"\x80\x00 anything framed", "tcp"))
    assert not may_be_sip(udp(b"\x80\x00\x00\x01" + bytes(168)))        # RTP
    assert not may_be_sip(udp(b"\x00\x01\x00\x00" + bytes(16)))          # STUN
    assert not may_be_sip(udp(b"\r\n\r\n"))                              # keep-alive


def test_small_captures_stay_in_one_process(tmp_path):
    small = build_call_pcap(tmp_path / "c.pcap")
    assert not worth_parallel(small)
    big = tmp_path / "big.pcap"
    big.write_bytes(small.read_bytes() + bytes(MIN_BYTES))
    assert worth_parallel(big) == (len(__import__("os").sched_getaffinity(0)) > 1)


def test_same_report_when_the_worker_is_spawned(tmp_path):
    """With another thread alive (a progress bar's refresher, a Robot listener) the worker is
    spawned rather than forked (a fork would copy locks that thread may hold)."""
    import threading

    stop = threading.Event()
    other = threading.Thread(target=stop.wait, daemon=True)
    other.start()
    try:
        assert threading.active_count() > 1
        _same(build_call_pcap(tmp_path / "bad.pcap", malformed=True))
    finally:
        stop.set()
        other.join()
