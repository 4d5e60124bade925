"""Dialog/transaction correlation: outcomes, timings, retransmissions, call rules, bounds."""

from qa.analysis.calls import CallTracker, Limits, SipEvent
from qa.analysis.findings import FindingSink
from qa.rtp import RtpPacket

A, P, B = "10.0.0.1:5060", "10.0.0.2:5060", "10.0.0.3:5060"
PCMU = {0: ("PCMU", 8000)}


class Flow:
    """Builds SipEvents of one Call-ID in capture order."""

    def __init__(self, call_id="c1", t=1000.0):
        self.call_id, self.t, self.frame, self.events = call_id, t, 0, []

    def msg(self, src, dst, method, cseq=1, status=0, reason="", *, dt=0.01, to_tag=None,
            from_tag="ft", branch="b1", media=None, info=None):
        self.t += dt
        self.frame += 1
        ev = SipEvent(self.frame, self.t, src, dst, "udp", method, status, reason, self.call_id, cseq,
                      from_tag, to_tag, branch, media=media, info_digit=info)
        self.events.append(ev)
        return self

    def resp(self, src, dst, status, method="INVITE", cseq=1, reason="", **kw):
        return self.msg(src, dst, method, cseq, status, reason or {200: "OK", 180: "Ringing"}.get(status, "X"),
                        to_tag=kw.pop("to_tag", "tt"), **kw)


def run(*flows, limits=None, end=True):
    sink = FindingSink()
    done = []
    tracker = CallTracker(sink, on_finish=done.append, limits=limits)
    events = sorted((e for f in flows for e in f.events), key=lambda e: e.time)
    for ev in events:
        tracker.advance(ev.time)
        tracker.on_sip(ev, [])
    if end:
        tracker.close()
    return tracker, sink, {c.call_id: c for c in done}


def answered(f: Flow, media=False) -> Flow:
    offer = [("10.0.0.1", 4000, PCMU, 20, "sendrecv", ["PCMU"])] if media else None
    answer = [("10.0.0.3", 6000, PCMU, 20, "sendrecv", ["PCMU"])] if media else None
    f.msg(A, P, "INVITE", media=offer).resp(P, A, 100, dt=0.005)
    f.msg(P, B, "INVITE", branch="b2", media=offer).resp(B, P, 180, branch="b2", dt=0.2)
    f.resp(P, A, 180, dt=0.001).resp(B, P, 200, branch="b2", dt=1.0, media=answer)
    f.resp(P, A, 200, dt=0.001, media=answer).msg(A, P, "ACK", to_tag="tt", branch="b3")
    return f


def test_answered_call_with_bye():
    f = answered(Flow()).msg(A, P, "BYE", 2, to_tag="tt", dt=5).resp(P, A, 200, "BYE", 2)
    tracker, sink, calls = run(f)
    c = calls["c1"]
    assert (c.kind, c.final_code, c.answered, c.ended_by, c.bye_from) == ("call", 200, True, "bye", "caller")
    assert c.pdd_ms == 216.0 and c.setup_ms == 1217.0        # RFC 6076 SRD / SER on the caller's hop
    assert not sink.findings and tracker.calls == 1 and not tracker.live


def test_challenge_then_failure_counts_by_method_and_code():
    f = Flow().msg(A, P, "INVITE").resp(P, A, 407, reason="Proxy Authentication Required")
    f.msg(A, P, "ACK", to_tag="tt").msg(A, P, "INVITE", 2, branch="b9")
    f.resp(P, A, 488, cseq=2, reason="Not Acceptable Here", branch="b9").msg(A, P, "ACK", 2, to_tag="tt", branch="b9")
    tracker, sink, calls = run(f)
    assert calls["c1"].final_code == 488 and calls["c1"].ended_by == "failed"
    assert dict(tracker.error_responses) == {"INVITE 407": 1, "INVITE 488": 1}
    [finding] = sink.findings
    assert (finding.rule, finding.severity, finding.frame) == ("call.failed", "warning", 5)
    assert "488 Not Acceptable Here" in finding.reason


def test_error_response_on_two_hops_counted_once():
    f = Flow().msg(A, P, "INVITE").msg(P, B, "INVITE", branch="b2").resp(B, P, 486, branch="b2")
    f.resp(P, A, 486)
    tracker, _, _ = run(f)
    assert dict(tracker.error_responses) == {"INVITE 486": 1}


def test_challenge_only_is_not_a_failed_call():
    f = Flow().msg(A, P, "INVITE").resp(P, A, 401).msg(A, P, "ACK", to_tag="tt")
    f.msg(A, P, "INVITE", 2, branch="b2").resp(P, A, 200, cseq=2, branch="b2").msg(A, P, "ACK", 2, to_tag="tt")
    f.msg(P, A, "BYE", 1, from_tag="tt", to_tag="ft", branch="x").resp(A, P, 200, "BYE", 1, to_tag="ft", branch="x")
    _, sink, calls = run(f)
    assert not sink.findings
    assert calls["c1"].bye_from == "callee" and calls["c1"].error_responses == {"INVITE 401": 1}


def test_cancel_487_is_not_a_failure():
    f = Flow().msg(A, P, "INVITE").resp(P, A, 180).msg(A, P, "CANCEL").resp(P, A, 200, "CANCEL")
    f.resp(P, A, 487, reason="Request Terminated").msg(A, P, "ACK", to_tag="tt")
    _, sink, calls = run(f)
    assert calls["c1"].ended_by == "cancel" and not sink.findings


def test_no_final_and_no_bye():
    no_final = Flow("nf").msg(A, P, "INVITE").resp(P, A, 100)
    no_bye = answered(Flow("nb"))
    _, sink, calls = run(no_final, no_bye)
    assert {(f.call_id, f.rule) for f in sink.findings} == {("nf", "call.no-final"), ("nb", "call.no-bye")}
    assert calls["nb"].ended_by == "capture-end"


def test_retransmissions_counted_not_double_processed():
    f = Flow().msg(A, P, "INVITE").msg(A, P, "INVITE", dt=0.5).resp(P, A, 486).resp(P, A, 486)
    tracker, sink, calls = run(f)
    assert calls["c1"].retransmissions == 2 and tracker.retransmissions == 2
    assert dict(tracker.error_responses) == {"INVITE 486": 1}
    assert {x.rule for x in sink.findings} == {"call.failed", "sip.retransmissions"}
    assert [e.retransmission for e in calls["c1"].events] == [False, True, False, True]


def test_register_is_a_dialog_not_a_call():
    f = Flow("r").msg(A, P, "REGISTER").resp(P, A, 401, "REGISTER").msg(A, P, "REGISTER", 2, branch="b2")
    f.resp(P, A, 403, "REGISTER", 2, branch="b2")
    tracker, sink, calls = run(f)
    assert calls["r"].kind == "REGISTER" and calls["r"].ended_by == "done"
    assert tracker.calls == 0 and tracker.dialogs == 1 and not sink.findings
    assert dict(tracker.error_responses) == {"REGISTER 401": 1, "REGISTER 403": 1}


def test_calls_are_forgotten_after_grace_and_idle():
    limits = Limits(grace_s=2.0, idle_s=30.0)
    flows = [Flow(f"c{i}", t=1000.0 + i * 10).msg(A, P, "INVITE").resp(P, A, 404).msg(A, P, "ACK", to_tag="tt")
             for i in range(5)]
    idle = Flow("idle", t=1000.0).msg(A, P, "OPTIONS")
    tracker, _, calls = run(*flows, idle, limits=limits, end=False)
    # at t=1040 the first four are past their grace; "idle" (t=1000) is not yet past 30 s idle + ...
    assert set(tracker.live) == {"c4"}
    assert calls["idle"].ended_by == "idle"
    tracker.close()
    assert not tracker.live and not tracker.media.receivers


def test_info_dtmf_and_rtp_streams_one_way():
    f = answered(Flow(), media=True).msg(A, P, "INFO", 2, to_tag="tt", info="5")
    sink = FindingSink()
    done = []
    tracker = CallTracker(sink, on_finish=done.append)
    for ev in f.events:
        tracker.on_sip(ev, [])
    target = tracker.media.lookup("10.0.0.3", 6000, "10.0.0.1", 4000)
    assert target.direction == "forward"
    for i in range(30):
        data = bytes(RtpPacket(payload_type=0, sequence_number=i, timestamp=i * 160, ssrc=7, payload=bytes(160)))
        tracker.on_rtp(100 + i, f.t + i * 0.02, "10.0.0.1:4000", "10.0.0.3:6000", data, target)
    tracker.close()
    c = done[0]
    assert c.dtmf_info == "5" and c.media_packets("forward") == 30 and c.media_packets("backward") == 0
    assert [x.rule for x in sink.findings] == ["call.no-bye", "rtp.one-way"]
    assert sink.findings[1].severity == "error"


def test_ladder_events_are_bounded():
    f = Flow().msg(A, P, "INVITE")
    for i in range(50):
        f.msg(A, P, "INFO", i + 2, branch=f"i{i}")
    _, _, calls = run(f, limits=Limits(max_events=10))
    assert len(calls["c1"].events) == 10 and calls["c1"].events_dropped == 41
