"""The engine over synthetic captures (qa.capture.writer) and over every corpus pcap.

``build_call_pcap`` is shared by the CLI, ladder and fuzz tests (imported from here).
"""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from qa.analysis.engine import analyze
from qa.analysis.findings import SEVERITIES
from qa.capture.writer import udp_packet, write_pcap
from qa.rtp import DtmfEvent, RtpPacket
from tests.corpus import CORPUS as SHARED_CORPUS
from tests.corpus import corpus_params, require_corpus

CORPUS = SHARED_CORPUS / "pcaps"
CALLER, PROXY = ("10.1.0.1", 5062), ("10.1.0.2", 5060)
CALL_ID = "call-1@test"

SDP = ("v=0\r\no=- 1 1 IN IP4 {ip}\r\ns=-\r\nc=IN IP4 {ip}\r\nt=0 0\r\n"
       "m=audio {port} RTP/AVP 0 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:101 telephone-event/8000\r\n"
       "a=fmtp:101 0-16\r\na=sendrecv\r\n")


def sip(start: str, cseq: str, *, to_tag: bool = False, body: str = "", branch: str = "z9hG4bK-1",
        call_id: str = CALL_ID, ctype: str = "application/sdp", extra: str = "") -> bytes:
    head = (f"{start}\r\nVia: SIP/2.0/UDP 10.1.0.1:5062;branch={branch}\r\nMax-Forwards: 70\r\n"
            f"From: <sip:1001@10.1.0.2>;tag=from1\r\nTo: <sip:1555@10.1.0.2>{';tag=to1' if to_tag else ''}\r\n"
            f"Call-ID: {call_id}\r\nCSeq: {cseq}\r\nContact: <sip:1001@10.1.0.1:5062>\r\n{extra}")
    if body:
        head += f"Content-Type: {ctype}\r\n"
    return (head + f"Content-Length: {len(body.encode())}\r\n\r\n{body}").encode()


def rtp(seq: int, pt: int = 0, ts: int | None = None, payload: bytes = bytes(160), ssrc: int = 1) -> bytes:
    return bytes(RtpPacket(payload_type=pt, sequence_number=seq, timestamp=seq * 160 if ts is None else ts,
                           ssrc=ssrc, payload=payload))


def build_call_pcap(path: Path, *, digits: str = "12", one_way: bool = False, malformed: bool = False,
                    bye: bool = True, final: int = 200) -> Path:
    """INVITE/100/180/200/ACK, 50 RTP packets each way with RFC 4733 ``digits`` from the
    caller, BYE/200. Options break it on purpose."""
    t = 1_700_000_000.0
    pkts: list[tuple[float, bytes]] = []

    def up(data: bytes, dt: float = 0.01) -> None:
        nonlocal t
        t += dt
        pkts.append((t, udp_packet(*CALLER, *PROXY, data)))

    def down(data: bytes, dt: float = 0.01) -> None:
        nonlocal t
        t += dt
        pkts.append((t, udp_packet(*PROXY, *CALLER, data)))

    invite = sip("INVITE sip:1555@10.1.0.2 SIP/2.0", "1 INVITE", body=SDP.format(ip="10.1.0.1", port=4000))
    if malformed:
        invite = invite.replace(b"CSeq: 1 INVITE", b"CSeq: one INVITE")
    up(invite)
    down(sip("SIP/2.0 100 Trying", "1 INVITE"), 0.005)
    down(sip("SIP/2.0 180 Ringing", "1 INVITE", to_tag=True), 0.3)
    if final != 200:
        down(sip(f"SIP/2.0 {final} Not Acceptable Here", "1 INVITE", to_tag=True), 0.2)
        up(sip("ACK sip:1555@10.1.0.2 SIP/2.0", "1 ACK", to_tag=True))
    else:
        down(sip("SIP/2.0 200 OK", "1 INVITE", to_tag=True, body=SDP.format(ip="10.1.0.2", port=6000)), 0.7)
        up(sip("ACK sip:1555@10.1.0.2 SIP/2.0", "1 ACK", to_tag=True, branch="z9hG4bK-2"))
        for i in range(50):
            t += 0.02
            pkts.append((t, udp_packet("10.1.0.1", 4000, "10.1.0.2", 6000, rtp(i))))
            if not one_way:
                pkts.append((t + 0.001, udp_packet("10.1.0.2", 6000, "10.1.0.1", 4000, rtp(i, ssrc=2))))
        seq = 50
        for k, digit in enumerate(digits):
            for n, end in enumerate((False, False, True, True, True)):
                t += 0.02
                ev = bytes(DtmfEvent.for_digit(digit, end=end, duration=160 * (n + 1)))
                pkts.append((t, udp_packet("10.1.0.1", 4000, "10.1.0.2", 6000,
                                           rtp(seq, 101, ts=100_000 + k * 8000, payload=ev))))
                seq += 1
        if bye:
            up(sip("BYE sip:1555@10.1.0.2 SIP/2.0", "2 BYE", to_tag=True, branch="z9hG4bK-3"), 1.0)
            down(sip("SIP/2.0 200 OK", "2 BYE", to_tag=True, branch="z9hG4bK-3"))
    write_pcap(path, pkts)
    return path


# -- synthetic ---------------------------------------------------------------------------
def test_clean_call(tmp_path):
    report = analyze(build_call_pcap(tmp_path / "ok.pcap"))
    assert report.exit_code == 0, report.findings
    assert (report.sip_messages, report.calls, report.dialogs) == (7, 1, 1)
    [call] = report.summaries
    assert (call.final_code, call.answered, call.ended_by, call.bye_from) == (200, True, "bye", "caller")
    assert call.pdd_ms == pytest.approx(305, abs=1) and call.setup_ms == pytest.approx(1005, abs=1)
    assert call.offered_codecs == ["PCMU", "telephone-event"] and call.answered_codec == "PCMU"
    assert call.dtmf_rtp == "12"
    assert call.media_packets("forward") == 60 and call.media_packets("backward") == 50
    assert all(s.lost == 0 and s.mos and s.mos > 4.0 for s in call.streams)


def test_malformed_sip_is_an_error_with_offset(tmp_path):
    report = analyze(build_call_pcap(tmp_path / "bad.pcap", malformed=True))
    assert report.exit_code == 1
    bad = [f for f in report.findings if f.severity == "error"]
    assert bad and bad[0].frame == 1 and bad[0].rule.startswith("sip.") and bad[0].call_id == CALL_ID
    data = (tmp_path / "bad.pcap").read_bytes()
    assert bad[0].offset is not None and 0 < bad[0].offset < len(data)


def test_one_way_audio_and_no_bye(tmp_path):
    report = analyze(build_call_pcap(tmp_path / "ow.pcap", one_way=True, bye=False, digits=""))
    rules = {f.rule: f.severity for f in report.findings}
    assert rules == {"rtp.one-way": "error", "call.no-bye": "warning"}
    assert report.exit_code == 1


def test_failed_call_is_a_warning(tmp_path):
    report = analyze(build_call_pcap(tmp_path / "488.pcap", final=488))
    assert [(f.rule, f.severity) for f in report.findings] == [("call.failed", "warning")]
    assert report.exit_code == 0 and report.stats["error_responses"] == {"INVITE 488": 1}


def test_streaming_memory_is_bounded(tmp_path):
    """Many short calls: summaries are handed out as calls end and nothing live is left."""
    t = 1_700_000_000.0
    pkts = []
    for i in range(300):
        cid = f"c{i}@x"
        for data, dt in ((sip("INVITE sip:1555@10.1.0.2 SIP/2.0", "1 INVITE", call_id=cid), 0.0),
                         (sip("SIP/2.0 486 Busy Here", "1 INVITE", to_tag=True, call_id=cid), 0.01)):
            pkts.append((t + i * 1.0 + dt, udp_packet(*CALLER, *PROXY, data)))
    write_pcap(tmp_path / "many.pcap", pkts)
    seen = []
    from qa.analysis.engine import Analyzer
    from qa.capture import CaptureReader

    analyzer = Analyzer("many", on_call=seen.append, keep_calls=10)
    peak = 0
    for item in CaptureReader(tmp_path / "many.pcap"):
        analyzer.feed(item)
        peak = max(peak, len(analyzer.tracker.live))
    report = analyzer.finish()
    assert peak <= 8 and len(seen) == 300 and report.calls == 300
    assert len(report.summaries) == 10 and report.summaries_dropped == 290
    assert report.rule_counts["call.failed"] == 300 and len(report.findings) == 200   # capped per rule
    assert report.suppressed == {"call.failed": 100}


# -- corpus ------------------------------------------------------------------------------
def _index() -> dict[str, dict[str, str]]:
    with open(CORPUS / "INDEX.tsv", newline="") as fh:
        return {row["file"]: row for row in csv.DictReader(fh, delimiter="\t")}


CORPUS_FILES = corpus_params(lambda: sorted(_index()), "pcaps")


@pytest.fixture(scope="module")
def corpus_reports():
    require_corpus("pcaps")
    cache: dict[str, object] = {}

    def get(name: str):
        if name not in cache:
            cache[name] = analyze(CORPUS / name)
        return cache[name]
    return get


@pytest.mark.parametrize("name", CORPUS_FILES)
def test_every_corpus_pcap_is_analysed_sanely(name, corpus_reports):
    from qa.capture import PcapError

    try:
        report = corpus_reports(name)
    except PcapError as exc:  # a format the reader does not read is one line, never a traceback
        assert name in str(exc) and "\n" not in str(exc)
        return
    assert report.packets > 0
    for f in report.findings:
        assert f.severity in SEVERITIES and f.rule and f.reason
        assert f.frame is None or 1 <= f.frame <= report.packets


def test_corpus_488_capture(corpus_reports):
    report = corpus_reports("sip-488-codec-reject.pcapng")
    assert report.stats["error_responses"] == {"INVITE 401": 1, "INVITE 488": 1}
    failed = [f for f in report.findings if f.rule == "call.failed"]
    assert len(failed) == 1 and "488" in failed[0].reason


def test_corpus_auth_failure_counts(corpus_reports):
    report = corpus_reports("sip-auth-failure.pcapng")
    # tshark: 401 x2, 403 x2 — REGISTER 401 then 403, SUBSCRIBE 401 then 403 (CSeq methods)
    assert report.stats["error_responses"] == {"REGISTER 401": 1, "REGISTER 403": 1,
                                               "SUBSCRIBE 401": 1, "SUBSCRIBE 403": 1}
    assert report.calls == 0


def test_corpus_rfc2833_digits(corpus_reports):
    # tshark -o rtp.heuristic_rtp:TRUE -Y rtpevent shows events 6 7 8 9 1 2 3 (5 packets each)
    report = corpus_reports("SIP_DTMF2.cap")
    assert [c.dtmf_rtp for c in report.summaries if c.dtmf_rtp] == ["6789123"]
    assert report.stats["error_responses"] == {"INVITE 603": 1}


def test_corpus_sip_info_digits(corpus_reports):
    report = corpus_reports("DTMFsipinfo.pcap")
    assert "".join(c.dtmf_info for c in report.summaries)  # 4 INFO application/dtmf-relay


def test_corpus_g711_calls(corpus_reports):
    report = corpus_reports("sip-rtp-g711.pcap")
    calls = {c.call_id: c for c in report.summaries}
    assert calls["1-1966@10.0.2.20"].ended_by == "bye" and calls["1-1966@10.0.2.20"].answered_codec == "PCMU"
    assert calls["1-1968@10.0.2.20"].answered_codec == "PCMA"
    assert [f.rule for f in report.findings if f.call_id == "1-1968@10.0.2.20"] == ["call.no-bye"]
    assert sum(s.packets for c in calls.values() for s in c.streams) == 839


def test_corpus_tcp_and_websocket_calls(corpus_reports):
    assert corpus_reports("sip-over-tcp.pcap").sip_messages == 7
    frag = corpus_reports("sip_ipv4_tcp_fragmented_port6060.pcap")
    assert frag.stats["error_responses"].get("INVITE 486") == 1
