"""The wire witness judges: one-way audio, no media, RTP on a payload type not negotiated,
missing early media and a response's CSeq not matching its request fail the call, with a
reason a person reads. Crafted captures (qa.capture.writer) and SIP messages; the Robot
report keeps every failing check.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from qa.analysis.calls import CallTracker, SipEvent
from qa.analysis.engine import analyze
from qa.analysis.findings import RULES, FindingSink
from qa.capture.writer import udp_packet, write_pcap
from qa.cases.checks import Expectation, failure_message, final_code, reasons_of
from qa.cases.customers import CallSpec
from qa.cases.runner import wire_expectation
from qa.cases.wire import join_wire, wire_message, wire_verdict
from qa.errors import BadInput
from qa.record import CallRecord
from qa.rtp import RtpPacket

CUSTOMER, CARRIER = ("10.1.0.1", 5062), ("10.1.0.9", 5060)
CUSTOMER_RTP, CARRIER_RTP = ("10.1.0.1", 4000), ("10.1.0.9", 6000)
CALL_ID = "wire-1@test"
OFFER = "0 8 101"      # PCMU, PCMA, telephone-event
ANSWER = "8 101"       # the carrier takes PCMA


def sdp(ip: str, port: int, formats: str) -> str:
    maps = {"0": "a=rtpmap:0 PCMU/8000", "8": "a=rtpmap:8 PCMA/8000",
            "101": "a=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-16"}
    return (f"v=0\r\no=- 1 1 IN IP4 {ip}\r\ns=-\r\nc=IN IP4 {ip}\r\nt=0 0\r\nm=audio {port} RTP/AVP {formats}\r\n"
            + "".join(maps[f] + "\r\n" for f in formats.split()) + "a=sendrecv\r\n")


def sip(start: str, cseq: str, *, to_tag: bool = False, body: str = "", branch: str = "z9hG4bK-inv") -> bytes:
    head = (f"{start}\r\nVia: SIP/2.0/UDP 10.1.0.1:5062;branch={branch}\r\nMax-Forwards: 70\r\n"
            f"From: <sip:1001@10.1.0.9>;tag=from1\r\nTo: <sip:1555@10.1.0.9>{';tag=to1' if to_tag else ''}\r\n"
            f"Call-ID: {CALL_ID}\r\nCSeq: {cseq}\r\nContact: <sip:1001@10.1.0.1:5062>\r\n")
    if body:
        head += "Content-Type: application/sdp\r\n"
    return (head + f"Content-Length: {len(body.encode())}\r\n\r\n{body}").encode()


def rtp(seq: int, pt: int, ssrc: int) -> bytes:
    return bytes(RtpPacket(payload_type=pt, sequence_number=seq, timestamp=seq * 160, ssrc=ssrc,
                           payload=bytes(160)))


def call_pcap(path: Path, *, to_carrier: int = 50, to_customer: int = 50, carrier_pt: int = 8,
              early: int = 0, early_pt: int = 8, bye_cseq: str = "2 BYE", drop_every: int = 0) -> Path:
    """INVITE (offer PCMU/PCMA/events) / 183 with the answer (PCMA/events) / ``early``
    carrier RTP / 200 / ACK / RTP each way / BYE / 200 with CSeq ``bye_cseq``."""
    t = 1_700_000_000.0
    pkts: list[tuple[float, bytes]] = []

    def send(src: tuple[str, int], dst: tuple[str, int], data: bytes, dt: float = 0.02) -> None:
        nonlocal t
        t += dt
        pkts.append((t, udp_packet(*src, *dst, data)))

    answer = sdp(CARRIER_RTP[0], CARRIER_RTP[1], ANSWER)
    send(CUSTOMER, CARRIER, sip("INVITE sip:1555@10.1.0.9 SIP/2.0", "1 INVITE",
                                body=sdp(CUSTOMER_RTP[0], CUSTOMER_RTP[1], OFFER)))
    send(CARRIER, CUSTOMER, sip("SIP/2.0 183 Session Progress", "1 INVITE", to_tag=True, body=answer))
    for i in range(early):
        send(CARRIER_RTP, CUSTOMER_RTP, rtp(i, early_pt, ssrc=7))
    send(CARRIER, CUSTOMER, sip("SIP/2.0 200 OK", "1 INVITE", to_tag=True, body=answer))
    send(CUSTOMER, CARRIER, sip("ACK sip:1555@10.1.0.9 SIP/2.0", "1 ACK", to_tag=True, branch="z9hG4bK-ack"))
    for i in range(max(to_carrier, to_customer)):
        if i < to_carrier:
            send(CUSTOMER_RTP, CARRIER_RTP, rtp(i, 8, ssrc=1), dt=0.01)
        if i < to_customer and not (drop_every and i % drop_every == drop_every - 1):   # lost on the way
            send(CARRIER_RTP, CUSTOMER_RTP, rtp(early + i, carrier_pt, ssrc=7), dt=0.01)
        elif i < to_customer:
            t += 0.01
    send(CUSTOMER, CARRIER, sip("BYE sip:1555@10.1.0.9 SIP/2.0", "2 BYE", to_tag=True, branch="z9hG4bK-bye"))
    send(CARRIER, CUSTOMER, sip("SIP/2.0 200 OK", bye_cseq, to_tag=True, branch="z9hG4bK-bye"))
    write_pcap(path, pkts)
    return path


def summary_of(path: Path):
    report = analyze(path)
    call = report.call(CALL_ID)
    assert call is not None
    return report, call


# --- one-way audio, no media, payload types -----------------------------------------------

def test_one_way_audio_fails_with_both_counts(tmp_path):
    _, call = summary_of(call_pcap(tmp_path / "c.pcap", to_carrier=250, to_customer=0))
    assert wire_verdict(call, {"media": "both"}) == [
        "one-way audio: carrier→customer 0 RTP packets, customer→carrier 250"]


def test_no_media_on_an_answered_call_fails_when_media_was_expected(tmp_path):
    _, call = summary_of(call_pcap(tmp_path / "c.pcap", to_carrier=0, to_customer=0))
    assert wire_verdict(call, {"media": "both"}) == ["no media: answered call, 0 RTP packets either way"]


QUALITY = {"loss_pct_max": 5.0, "jitter_ms_max": 40.0, "mos_min": 3.5}


def test_lossy_media_fails_on_its_bounds(tmp_path):
    """A platform dropping one packet in five: the call fails on loss and on MOS, naming the
    stream; the same call judged without bounds passes."""
    _, call = summary_of(call_pcap(tmp_path / "c.pcap", to_carrier=100, to_customer=100, drop_every=5))
    reasons = wire_verdict(call, {"media": "both", "quality": QUALITY})
    assert reasons[0] == ("RTP carrier→customer 10.1.0.9:6000→10.1.0.1:4000: 19.2% lost (19 of 99), "
                          "at most 5% allowed"), reasons
    assert len(reasons) == 2 and reasons[1].startswith("RTP carrier→customer") and "MOS" in reasons[1]
    assert wire_verdict(call, {"media": "both"}) == []


def test_clean_media_and_short_streams_pass_their_bounds(tmp_path):
    _, call = summary_of(call_pcap(tmp_path / "c.pcap", to_carrier=100, to_customer=100))
    assert wire_verdict(call, {"media": "both", "quality": QUALITY}) == []
    _, short = summary_of(call_pcap(tmp_path / "s.pcap", to_carrier=20, to_customer=20, drop_every=2))
    assert wire_verdict(short, {"media": "both", "quality": QUALITY}) == []      # 0.4 s: too short to judge


def test_media_both_ways_on_the_negotiated_type_passes(tmp_path):
    report, call = summary_of(call_pcap(tmp_path / "c.pcap"))
    assert call.negotiated_payload_types == [8, 101]
    assert wire_verdict(call, {"media": "both"}) == []
    assert not [f for f in report.findings if f.severity == "error"]


def test_a_case_about_absent_media_opts_out(tmp_path):
    _, call = summary_of(call_pcap(tmp_path / "c.pcap", to_carrier=250, to_customer=0, carrier_pt=0))
    assert wire_verdict(call, {"media": "any"}) == []


def test_one_way_is_not_judged_when_the_customer_sends_no_rtp(tmp_path):
    """Test customers often send no media: the carrier's RTP alone is not a fault."""
    _, call = summary_of(call_pcap(tmp_path / "c.pcap", to_carrier=0, to_customer=100))
    assert wire_verdict(call, {"media": None, "customer_rtp": False}) == []


def test_rtp_on_an_offered_but_not_negotiated_payload_type_fails(tmp_path):
    """PCMU was offered, the answer took PCMA only: PCMU from the carrier is not negotiated
    although the customer's own SDP lists it (RFC 3264 §6.1)."""
    report, call = summary_of(call_pcap(tmp_path / "c.pcap", carrier_pt=0))
    reasons = wire_verdict(call, {"media": None})
    assert reasons == ["RTP carrier→customer on payload type 0 (50 packets), negotiated 8, 101"]
    assert "rtp.payload-type" in {f.rule for f in report.findings}


# --- early media ---------------------------------------------------------------------------

def test_early_media_before_the_200_ok_passes(tmp_path):
    _, call = summary_of(call_pcap(tmp_path / "c.pcap", early=10))
    assert call.answer_frame == 13 and wire_verdict(call, {"media": "early"}) == []


def test_no_rtp_before_the_200_ok_fails_early_media(tmp_path):
    _, call = summary_of(call_pcap(tmp_path / "c.pcap", early=0))
    assert wire_verdict(call, {"media": "early"}) == [
        f"no early media: 0 RTP packets carrier→customer before the 200 OK (frame {call.answer_frame})"]


def test_early_media_on_a_payload_type_not_negotiated_fails(tmp_path):
    _, call = summary_of(call_pcap(tmp_path / "c.pcap", early=10, early_pt=0))
    reasons = wire_verdict(call, {"media": "early"})
    assert any(r.startswith("no early media: RTP carrier→customer before the 200 OK (frame 13) only on "
                            "payload type 0, negotiated 8, 101") for r in reasons), reasons


# --- CSeq of a response against its request (RFC 3261 §17.1.3) ----------------------------

def test_response_with_another_cseq_number_is_a_finding_that_fails_the_call(tmp_path):
    report, call = summary_of(call_pcap(tmp_path / "c.pcap", bye_cseq="3 BYE"))
    found = [f for f in report.findings if f.rule == "call.cseq-mismatch"]
    assert len(found) == 1 and found[0].severity == "error" == RULES["call.cseq-mismatch"]
    assert "has CSeq 3 BYE, its request (Via branch z9hG4bK-bye) had CSeq 2 BYE" in found[0].reason
    assert wire_verdict(call, {"media": "any"}) == [f"frame {found[0].frame}: {found[0].reason}"]
    assert report.exit_code == 1


def test_response_with_another_cseq_method_is_a_finding(tmp_path):
    report, _ = summary_of(call_pcap(tmp_path / "c.pcap", bye_cseq="2 INVITE"))
    found = [f.reason for f in report.findings if f.rule == "call.cseq-mismatch"]
    assert found == ["200 response has CSeq 2 INVITE, but the request of its transaction "
                     "(Via branch z9hG4bK-bye) is CSeq 2 BYE"]


def _ev(frame, src, dst, method, cseq, status=0, branch="b1"):
    return SipEvent(frame, 1000.0 + frame / 100, src, dst, "udp", method, status, "OK" if status else "",
                    "c1", cseq, "ft", "tt" if status or method != "INVITE" else None, branch)


def test_cseq_matching_is_by_transaction_not_by_call():
    """CANCEL shares the INVITE's branch (§9.1), a new INVITE after a challenge has its own
    CSeq: none of that is a mismatch; an unknown branch (request not captured) is not judged."""
    a, b = "10.0.0.1:5060", "10.0.0.2:5060"
    sink = FindingSink()
    tracker = CallTracker(sink)
    for ev in (_ev(1, a, b, "INVITE", 1), _ev(2, b, a, "INVITE", 1, 401), _ev(3, a, b, "ACK", 1),
               _ev(4, a, b, "INVITE", 2, branch="b2"), _ev(5, a, b, "CANCEL", 2, branch="b2"),
               _ev(6, b, a, "CANCEL", 2, 200, branch="b2"), _ev(7, b, a, "INVITE", 2, 487, branch="b2"),
               _ev(8, b, a, "OPTIONS", 9, 200, branch="unknown")):
        tracker.on_sip(ev, [])
    tracker.close()
    assert "call.cseq-mismatch" not in {f.rule for f in sink.findings}


# --- what the runner writes, and the Robot report ------------------------------------------

@pytest.mark.parametrize("options, customer, expected", [
    ({}, None, {"media": "both", "customer_rtp": True}),               # every answered call carries media
    ({}, {"media_sent": "none (opus (PT 111): no pcap for it)"}, {"media": None, "customer_rtp": False}),
    ({"media": "none"}, None, {"media": None, "customer_rtp": False}),  # the case tests no media
    ({"media": "PCMA"}, None, {"media": "both", "customer_rtp": True}),
    ({"dtmf": "12", "dtmf_mode": "rfc4733"}, None, {"media": "both", "customer_rtp": True}),
    ({"dtmf": "12", "dtmf_mode": "info"}, None, {"media": "both", "customer_rtp": True}),   # beside its INFOs
    ({"transport": "tls"}, None, {"media": "both", "customer_rtp": True}),    # the Python customer plays too
    ({"transport": "tls", "media": "none"}, None, {"media": None, "customer_rtp": False}),
    ({"media": "PCMA", "expect": Expectation(media="any")}, None, {"media": "any", "customer_rtp": True}),
    ({"expect": Expectation(final_code=403)}, None, {"media": None, "customer_rtp": False}),
    ({"expect": Expectation(media="early")}, {"media_sent": "PCMA (PT 8): 50 packets, 1.00 s"},
     {"media": "early", "customer_rtp": True}),
])
def test_wire_expectation_follows_what_the_customer_sends(options, customer, expected):
    assert wire_expectation(CallSpec(case="c", from_user="1001", to="1555", **options), customer) == expected


def test_unknown_media_expectation_is_bad_input():
    with pytest.raises(BadInput):
        Expectation(media="sometimes")


def test_join_wire_fails_the_record_and_keeps_the_expectation(tmp_path):
    capture = call_pcap(tmp_path / "c.pcap", to_carrier=250, to_customer=0)
    calls = tmp_path / "calls.jsonl"
    record = CallRecord(case="One Way", call_id=CALL_ID, final_code=200, verdict="pass",
                        pcap={"expect": {"media": "both", "customer_rtp": True}})
    calls.write_text(record.to_json() + "\n")
    result = join_wire([capture], calls, tmp_path)
    got = json.loads(calls.read_text())
    assert got["verdict"] == "fail"
    assert got["reasons"] == ["wire: one-way audio: carrier→customer 0 RTP packets, customer→carrier 250"]
    assert got["pcap"]["expect"] == {"media": "both", "customer_rtp": True} and got["pcap"]["ladder"]
    assert result.failed_by_wire == ["One Way"] and result.reasons["One Way"] == got["reasons"]


def test_a_call_missing_from_the_capture_fails_on_the_wire(tmp_path):
    """The capture ran but never saw the call: the wire witness is missing, which is a
    failure of the call, not a quiet pass."""
    capture = call_pcap(tmp_path / "c.pcap", to_carrier=10, to_customer=10)
    calls = tmp_path / "calls.jsonl"
    seen = CallRecord(case="Seen", call_id=CALL_ID, final_code=200, verdict="pass")
    unseen = CallRecord(case="Unseen", call_id="not-on-the-wire@x", final_code=200, verdict="pass")
    calls.write_text(seen.to_json() + "\n" + unseen.to_json() + "\n")
    result = join_wire([capture], calls, tmp_path)
    got = {r["case"]: r for r in map(json.loads, calls.read_text().splitlines())}
    assert got["Seen"]["verdict"] == "pass"
    assert got["Unseen"]["verdict"] == "fail" and "not in the run's capture" in got["Unseen"]["reasons"][0]
    assert result.failed_by_wire == ["Unseen"]


# --- failure messages: every check, never cut mid-word -------------------------------------

REASONS = ["customer: answer carries PCMU, expected PCMA",
           "platform: CDR duration 0.00 s, customer measured 3.02 s (tolerance ±1 s)",
           "carrier: received RTP payload types [0], expected [8]",
           "wire: one-way audio: carrier→customer 0 RTP packets, customer→carrier 250"]


def test_failure_message_lists_every_check_and_cuts_the_first_line_between_checks():
    message = failure_message(REASONS, limit=140)
    head, *rest = message.splitlines()
    assert len(head) <= 140 and head.endswith(" (+2 more)")
    assert head.startswith(REASONS[0] + "; " + REASONS[1][:20])
    assert rest == [f"- {r}" for r in REASONS]
    assert reasons_of(message) == (REASONS, [])


def test_failure_message_of_one_short_check_is_the_check():
    assert failure_message(REASONS[:1]) == REASONS[0]
    assert reasons_of(REASONS[0]) == (REASONS[:1], [])


def test_an_over_long_single_check_is_cut_between_words():
    long = "wire: " + " ".join(f"word{i}" for i in range(60))
    head = failure_message([long], limit=80).splitlines()[0]
    assert len(head) <= 80 and head.endswith("…") and head[:-1] == long[:len(head) - 1]
    assert long[len(head) - 1] == " "


def test_wire_reasons_are_added_to_the_case_message_after_its_own():
    own = failure_message(REASONS[:2]) + "\ncall abc (Case)"
    merged = wire_message(own, [REASONS[3]])
    checks_, context = reasons_of(merged)
    assert checks_ == [REASONS[0], REASONS[1], REASONS[3]] and context == ["call abc (Case)"]
    assert wire_message("", [REASONS[3]]) == REASONS[3]


def test_annotate_report_fails_a_passing_case_with_the_wire_reason(tmp_path):
    from robot import run as robot_run
    from robot.api import ExecutionResult

    from qa.cases.wire import WireResult, annotate_report

    suite = tmp_path / "s.robot"
    suite.write_text("*** Test Cases ***\nOne Way\n    No Operation\nAlso Broken\n    Fail    customer: busy\n")
    robot_run(str(suite), outputdir=str(tmp_path), output="output.xml", log="NONE", report="NONE",
              stdout=open(tmp_path / "robot.txt", "w"))
    ladder = tmp_path / "ladders" / "x.html"
    ladder.parent.mkdir()
    ladder.write_text("<html/>")
    wire = "wire: one-way audio: carrier→customer 0 RTP packets, customer→carrier 250"
    result = WireResult(failed_by_wire=["One Way", "Also Broken"], ladders={"One Way": ladder},
                        reasons={"One Way": [wire], "Also Broken": [wire]})
    annotate_report(tmp_path / "output.xml", result, tmp_path, capture="c.pcapng")
    tests = {t.name: t for t in ExecutionResult(str(tmp_path / "output.xml")).suite.tests}
    assert tests["One Way"].status == "FAIL" and tests["One Way"].message.startswith(f"*HTML* {wire}<br>")
    assert tests["Also Broken"].status == "FAIL"
    assert tests["Also Broken"].message.splitlines() == ["customer: busy; " + wire + "", "- customer: busy",
                                                         f"- {wire}"]


def test_the_wire_fails_the_robot_test_that_placed_the_call_whatever_its_case_name(tmp_path):
    """A `Start Call` alias (or ``case=``) is not a test name, and two suites may share a
    test name: the record's ``test`` (suite file::test name) picks the one test to fail."""
    from robot import run as robot_run
    from robot.api import ExecutionResult

    from qa.record import test_id
    from qa.cases.wire import annotate_report

    suites = tmp_path / "suites"
    suites.mkdir()
    for name in ("a", "b"):
        (suites / f"{name}.robot").write_text("*** Test Cases ***\nTwo Calls\n    No Operation\n")
    robot_run(str(suites), outputdir=str(tmp_path), output="output.xml", log="NONE", report="NONE",
              stdout=open(tmp_path / "robot.txt", "w"))
    capture = call_pcap(tmp_path / "c.pcap", to_carrier=250, to_customer=0)
    calls = tmp_path / "calls.jsonl"
    record = CallRecord(case="second-leg", test=test_id(suites / "a.robot", "Two Calls"), call_id=CALL_ID,
                        final_code=200, verdict="pass", pcap={"expect": {"media": "both", "customer_rtp": True}})
    calls.write_text(record.to_json() + "\n")
    result = join_wire([capture], calls, tmp_path)
    annotate_report(tmp_path / "output.xml", result, tmp_path, capture="c.pcap")
    status = {Path(t.source).name: t.status for t in ExecutionResult(str(tmp_path / "output.xml")).suite.all_tests}
    assert status == {"a.robot": "FAIL", "b.robot": "PASS"}


# --- the customer says what it received -------------------------------------------------------

def test_no_final_response_says_why_the_customer_gave_up():
    record = CallRecord(case="TLS", final_code=None,
                        customer={"problem": "tls: certificate expired 3 days ago (not after 2026-11-30)"})
    assert final_code(record, 200) == ["customer: no final response (tls: certificate expired 3 days ago "
                                       "(not after 2026-11-30)), expected 200"]


def test_no_final_response_names_the_provisional_responses_received():
    record = CallRecord(case="c", final_code=None, customer={"provisional": [180, 183]})
    assert final_code(record, 200) == ["customer: no final response (received only 180, 183), expected 200"]


def test_a_final_response_is_never_reported_as_none():
    record = CallRecord(case="c", final_code=408, customer={"problem": "200 OK then 408"})
    assert final_code(record, 200) == ["customer: final response 408 (200 OK then 408), expected 200"]


def test_a_witness_keyword_names_every_failing_check_of_the_call():
    """A case stops at its first failing keyword: its message still carries the record's
    other failing checks, so the root cause shows without opening calls.jsonl."""
    from qa.robot.witnesses import WitnessKeywords

    record = CallRecord(case="Mixed Offer", call_id="abc", final_code=200, answered_codec="PCMU",
                        verdict="fail", reasons=[REASONS[1], REASONS[2]])
    with pytest.raises(AssertionError) as err:
        WitnessKeywords(None).answered_codec_should_be(record, "PCMA")
    checks_, context = reasons_of(str(err.value))
    assert checks_ == [REASONS[0], REASONS[1], REASONS[2]] and context == ["call abc (Mixed Offer)"]
    assert len(str(err.value).splitlines()[0]) <= 148


# --- carrier faults the integration test injects -------------------------------------------

def _plan_with(**route):
    from qa.carrier.plan import parse_plan

    return parse_plan({"version": 1, "routes": [{"prefix": "1555", **route}]}).route_for("15550001")


def test_carrier_fault_media_none_generates_and_echoes_nothing():
    from qa.carrier.media import MediaSession, MediaSpec

    route = _plan_with(media="none")
    session = MediaSession(MediaSpec(mode=route.media, codec="PCMA", payload_type=8))
    session.start()
    echo, _ = session.on_packet(rtp(1, 8, ssrc=3), ("10.0.0.1", 4000))
    assert route.media == "none" and not echo and session.next_packet() is None


def test_carrier_fault_rtp_payload_type_puts_the_codec_on_the_wrong_type():
    from qa.carrier.uas import _media_spec
    from qa.errors import ConfigError
    from qa.sdp import SessionDescription

    route = _plan_with(media="tone", rtp_payload_type=18)
    answer = SessionDescription.parse(sdp("10.0.0.9", 6000, ANSWER).encode())
    spec = _media_spec(route, answer, ("10.0.0.1", 4000))
    assert (spec.codec, spec.payload_type, spec.dtmf_pt) == ("PCMA", 18, 101)
    assert _media_spec(_plan_with(media="tone"), answer, None).payload_type == 8
    with pytest.raises(ConfigError):
        _plan_with(rtp_payload_type=128)


def test_sipp_customer_keeps_the_200_ok_a_late_408_follows():
    """A 408 after the 200 OK of the same INVITE (a platform's timer firing late) does not
    turn the customer's answer into "no final response"."""
    from qa.sipp.traces import TracedMessage, build_calls

    invite = sip("INVITE sip:1555@10.1.0.9 SIP/2.0", "1 INVITE", body=sdp("10.1.0.1", 4000, OFFER))
    trace = [TracedMessage("sent", 1.0, "udp", len(invite), invite),
             TracedMessage("received", 1.5, "udp", 0, sip("SIP/2.0 200 OK", "1 INVITE", to_tag=True,
                                                           body=sdp("10.1.0.9", 6000, ANSWER))),
             TracedMessage("received", 1.6, "udp", 0, sip("SIP/2.0 408 Request Timeout", "1 INVITE", to_tag=True))]
    (call,) = build_calls(trace)
    record = CallRecord(case="c", final_code=call.final_code)
    assert call.final_code == 200 and final_code(record, 200) == []
