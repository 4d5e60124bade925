"""The carrier's sans-I/O UAS state machine, with golden messages and a fake clock."""

from __future__ import annotations

from pathlib import Path

import pytest

from qa.carrier.cdr import CarrierCdr, DtmfEvent
from qa.carrier.media import HeardDigit, MediaSession, MediaSpec
from qa.carrier.plan import load_plan, parse_plan
from qa.carrier.uas import (Carrier, CancelTimer, CloseMedia, OpenMedia, Send, StartMedia, StartTimer,
                            StopMedia, WriteCdr)
from qa.rtp import RtpPacket, alaw_encode, ulaw_decode, ulaw_encode
from qa.rtp.dtmf_tones import InbandDtmfDetector, dtmf_tone_pcm
from qa.sip import Request, Response, parse_message, parse_name_addr
from qa.sdp import SessionDescription

ROOT = Path(__file__).resolve().parents[2]
PLAN = load_plan(ROOT / "carriers" / "numberplan.yaml")
CARRIER = ("127.0.0.1", 5070)
PROXY = ("127.0.0.1", 5060)
T0 = 1_700_000_000.0

SDP_PCMU = (
    "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
    "m=audio 6000 RTP/AVP 0 8 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:8 PCMA/8000\r\n"
    "a=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-16\r\na=sendrecv\r\n"
)
SDP_PCMU_ONLY = (
    "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
    "m=audio 6000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n"
)


def invite(number: str = "1555000100", *, branch: str = "z9hG4bK-inv-1", call_id: str = "call-1@test",
           from_tag: str = "caller-tag", cseq: int = 1, sdp: str | None = SDP_PCMU,
           transport: str = "UDP", extra: str = "") -> bytes:
    body = sdp or ""
    return (
        f"INVITE sip:{number}@127.0.0.1:5070 SIP/2.0\r\n"
        f"Via: SIP/2.0/{transport} 127.0.0.1:5060;branch={branch};rport\r\n"
        f"Via: SIP/2.0/{transport} 10.0.0.9:5062;branch=z9hG4bK-customer\r\n"
        "Record-Route: <sip:127.0.0.1:5060;lr;ftag=abc>\r\n"
        "Record-Route: <sip:10.0.0.1;lr>\r\n"
        "Max-Forwards: 69\r\n"
        f'From: "Alice" <sip:4930111@example.com>;tag={from_tag}\r\n'
        f"To: <sip:{number}@example.com>\r\n"
        f"Call-ID: {call_id}\r\n"
        f"CSeq: {cseq} INVITE\r\n"
        "Contact: <sip:alice@10.0.0.9:5062>\r\n"
        "X-Case: answer-echo\r\n"
        "X-Run-Id: r42\r\n"
        f"{extra}"
        + ("Content-Type: application/sdp\r\n" if sdp else "")
        + f"Content-Length: {len(body.encode())}\r\n\r\n{body}"
    ).encode()


def in_dialog(method: str, to_tag: str, *, branch: str, call_id: str = "call-1@test", cseq: int = 2,
              from_tag: str = "caller-tag", number: str = "1555000100", body: str = "",
              ctype: str = "") -> bytes:
    return (
        f"{method} sip:{number}@127.0.0.1:5070 SIP/2.0\r\n"
        f"Via: SIP/2.0/UDP 127.0.0.1:5060;branch={branch}\r\n"
        "Max-Forwards: 70\r\n"
        f'From: "Alice" <sip:4930111@example.com>;tag={from_tag}\r\n'
        f"To: <sip:{number}@example.com>;tag={to_tag}\r\n"
        f"Call-ID: {call_id}\r\n"
        f"CSeq: {cseq} {method}\r\n"
        + (f"Content-Type: {ctype}\r\n" if ctype else "")
        + f"Content-Length: {len(body)}\r\n\r\n{body}"
    ).encode()


def cancel(*, branch: str = "z9hG4bK-inv-1", call_id: str = "call-1@test", cseq: int = 1,
           number: str = "1555000100") -> bytes:
    return (
        f"CANCEL sip:{number}@127.0.0.1:5070 SIP/2.0\r\n"
        f"Via: SIP/2.0/UDP 127.0.0.1:5060;branch={branch};rport\r\n"
        "Max-Forwards: 70\r\n"
        'From: "Alice" <sip:4930111@example.com>;tag=caller-tag\r\n'
        f"To: <sip:{number}@example.com>\r\n"
        f"Call-ID: {call_id}\r\nCSeq: {cseq} CANCEL\r\nContent-Length: 0\r\n\r\n"
    ).encode()


def ack(to_tag: str, *, branch: str, cseq: int = 1, number: str = "1555000100") -> bytes:
    return (
        f"ACK sip:{number}@127.0.0.1:5070 SIP/2.0\r\n"
        f"Via: SIP/2.0/UDP 127.0.0.1:5060;branch={branch}\r\n"
        "Max-Forwards: 70\r\n"
        'From: "Alice" <sip:4930111@example.com>;tag=caller-tag\r\n'
        f"To: <sip:{number}@example.com>;tag={to_tag}\r\n"
        f"Call-ID: call-1@test\r\nCSeq: {cseq} ACK\r\nContent-Length: 0\r\n\r\n"
    ).encode()


class Harness:
    """Plays the I/O shell: fake clock, timers, a fake media port, captured output."""

    def __init__(self, plan=PLAN, transport: str = "udp", name: str = "carrier-t") -> None:
        self.carrier = Carrier(plan, name, CARRIER)
        self.transport = transport
        self.now = T0
        self.timers: dict = {}
        self.sent: list[tuple[float, Request | Response, tuple, str]] = []
        self.cdrs: list[CarrierCdr] = []
        self.media: dict[str, MediaSession] = {}
        self.closed: list[str] = []
        self.stopped: list[str] = []
        self.started: list[tuple[float, str]] = []

    # events in
    def deliver(self, data: bytes, peer=PROXY, transport: str | None = None) -> list:
        before = len(self.sent)
        self.run(self.carrier.on_message(data, peer, transport or self.transport, self.now))
        return [m for _, m, _, _ in self.sent[before:]]

    def advance(self, seconds: float) -> None:
        end = self.now + seconds
        while True:
            due = [(t, k) for k, t in self.timers.items() if t <= end + 1e-9]
            if not due:
                break
            t, key = min(due, key=lambda x: x[0])
            del self.timers[key]
            self.now = max(self.now, t)
            self.run(self.carrier.on_timer(key, self.now))
        self.now = end

    def run(self, actions: list) -> None:
        queue = list(actions)
        while queue:
            a = queue.pop(0)
            more = []
            if isinstance(a, Send):
                self.sent.append((self.now, parse_message(a.data), a.addr, a.transport))
            elif isinstance(a, StartTimer):
                self.timers[a.key] = self.now + a.delay
            elif isinstance(a, CancelTimer):
                self.timers.pop(a.key, None)
            elif isinstance(a, OpenMedia):
                self.media[a.call] = MediaSession(a.spec)
                more = self.carrier.media_ready(a.call, "127.0.0.1", 40000, self.now)
            elif isinstance(a, CloseMedia):
                self.closed.append(a.call)
            elif isinstance(a, StopMedia):
                self.stopped.append(a.call)
            elif isinstance(a, StartMedia):
                self.started.append((round(self.now - T0, 3), a.call))
            elif isinstance(a, WriteCdr):
                self.cdrs.append(a.record)
            queue[0:0] = more

    # views
    def responses(self, status: int | None = None) -> list[Response]:
        return [m for _, m, _, _ in self.sent
                if isinstance(m, Response) and (status is None or m.status == status)]

    def send_times(self, status: int) -> list[float]:
        return [round(t - T0, 3) for t, m, _, _ in self.sent if isinstance(m, Response) and m.status == status]

    def requests(self, method: str) -> list[tuple[float, Request, tuple, str]]:
        return [(t, m, a, tp) for t, m, a, tp in self.sent if isinstance(m, Request) and m.method == method]


def statuses(msgs) -> list[int]:
    return [m.status for m in msgs]


def answered_call(h: Harness, number: str = "1555000100") -> str:
    out = h.deliver(invite(number))
    assert statuses(out) == [100, 180, 200]
    tag = out[-1].to_tag
    h.deliver(ack(tag, branch="z9hG4bK-ack-1"))
    return tag


# ------------------------------------------------------------------------ answer

def test_answer_sends_100_180_200_with_sdp_contact_and_record_route():
    h = Harness()
    out = h.deliver(invite())
    assert statuses(out) == [100, 180, 200]
    trying, ringing, ok = out
    assert trying.to_tag is None                      # 100 without a tag
    assert ringing.to_tag and ringing.to_tag == ok.to_tag
    for r in out:                                       # §8.2.6.2 copies
        assert r.call_id == "call-1@test" and r.cseq == (1, "INVITE")
        assert [v.branch for v in r.vias] == ["z9hG4bK-inv-1", "z9hG4bK-customer"]
        assert r.from_tag == "caller-tag"
    assert ok.headers.get_all("Record-Route") == ["<sip:127.0.0.1:5060;lr;ftag=abc>", "<sip:10.0.0.1;lr>"]
    assert parse_name_addr(ok.headers.get("Contact")).uri == "sip:1555000100@127.0.0.1:5070"
    assert ok.content_type == "application/sdp"
    answer = SessionDescription.parse(ok.body)
    assert answer.media[0].port == 40000
    assert answer.audio.codec_names() == ["PCMU", "PCMA", "telephone-event"]
    assert all(a == PROXY and tp == "udp" for _, _, a, tp in h.sent)
    spec = h.media["c1"].spec
    assert list(h.media) == ["c1"] and spec.echo and spec.dtmf_pt == 101
    assert (spec.codec, spec.payload_type, spec.clock_rate) == ("PCMU", 0, 8000)
    assert spec.inband == ((0, "PCMU"), (8, "PCMA")) and spec.remote == ("127.0.0.1", 6000)
    assert h.started == [(0.0, "c1")]


def test_ack_stops_2xx_retransmissions():
    h = Harness()
    tag = answered_call(h)
    h.advance(40)
    assert len(h.responses(200)) == 1
    assert not h.cdrs and h.carrier.calls["c1"].state == "confirmed"
    assert tag


def test_2xx_retransmitted_t1_doubling_to_t2_then_bye_after_64_t1():
    h = Harness()
    h.deliver(invite())
    h.advance(40)
    # sent at 0, then after 0.5, 1, 2, 4, 4, 4, ... (T1 doubling, capped at T2) until 64*T1 = 32 s
    assert h.send_times(200) == [0.0, 0.5, 1.5, 3.5, 7.5, 11.5, 15.5, 19.5, 23.5, 27.5, 31.5]
    byes = h.requests("BYE")
    assert len(byes) >= 1 and round(byes[0][0] - T0, 3) == 32.0
    assert h.cdrs[0].ended_by == "timeout" and h.cdrs[0].final_code == 200


def test_2xx_not_retransmitted_over_tcp_but_no_ack_still_ends_the_call():
    h = Harness(transport="tcp")
    out = h.deliver(invite(transport="TCP"))
    assert statuses(out) == [100, 180, 200]
    assert ";transport=tcp" in out[-1].headers.get("Contact")
    h.advance(40)
    assert h.send_times(200) == [0.0]
    byes = h.requests("BYE")
    assert len(byes) == 1 and byes[0][3] == "tcp"         # no retransmission over TCP
    assert h.cdrs[0].ended_by == "timeout" and h.cdrs[0].transport == "tcp"


def test_invite_retransmission_is_absorbed_and_last_response_resent():
    h = Harness(plan=PLAN)
    out = h.deliver(invite("15550020"))                  # ring forever: 100, 180
    assert statuses(out) == [100, 180]
    again = h.deliver(invite("15550020"))
    assert statuses(again) == [180]
    assert len(h.carrier.calls) == 1 and h.carrier.stats["retransmissions_absorbed"] == 1
    # after the 200, a retransmitted INVITE gets the 200 again, still one call
    h2 = Harness()
    h2.deliver(invite())
    assert statuses(h2.deliver(invite())) == [200]
    assert len(h2.carrier.calls) == 1 and h2.carrier.stats["invites"] == 1


def test_merged_request_with_other_branch_gets_482():
    h = Harness()
    h.deliver(invite("15550020"))
    out = h.deliver(invite("15550020", branch="z9hG4bK-other-path"))
    assert statuses(out) == [482]
    assert len(h.carrier.calls) == 1


def test_answer_after_2s():
    h = Harness()
    out = h.deliver(invite("15550010"))
    assert statuses(out) == [100, 180]
    h.advance(1.9)
    assert not h.responses(200)
    h.advance(0.2)
    assert h.send_times(200) == [2.0]


def test_early_media_183_with_sdp_then_200():
    h = Harness()
    out = h.deliver(invite("15550060"))
    assert statuses(out) == [100, 183]
    assert out[1].content_type == "application/sdp"
    assert SessionDescription.parse(out[1].body).media[0].port == 40000
    h.advance(2.0)
    ok = h.responses(200)[0]
    assert ok.body == out[1].body and ok.to_tag == out[1].to_tag


# ------------------------------------------------------------------------ codecs

def test_pcma_only_route_answers_pcma():
    h = Harness()
    out = h.deliver(invite("15550050"))
    answer = SessionDescription.parse(out[-1].body)
    assert answer.audio.codec_names() == ["PCMA", "telephone-event"]
    h.deliver(ack(out[-1].to_tag, branch="z9hG4bK-a", number="15550050"))
    h.deliver(in_dialog("BYE", out[-1].to_tag, branch="z9hG4bK-bye", number="15550050"))
    assert h.cdrs[0].codec == "PCMA"


def test_no_common_codec_gets_488_without_media():
    h = Harness()
    out = h.deliver(invite("15550050", sdp=SDP_PCMU_ONLY))
    assert statuses(out) == [100, 488]
    assert not h.media
    assert h.cdrs[0].final_code == 488 and h.cdrs[0].codec == ""


def test_invite_without_sdp_gets_488():
    h = Harness()
    assert statuses(h.deliver(invite(sdp=None))) == [100, 488]


# ------------------------------------------------------------------------ rejects

def test_reject_486_retransmitted_until_ack():
    h = Harness()
    out = h.deliver(invite("1555003486"))
    assert statuses(out) == [100, 486]
    assert out[1].reason == "Busy Here" and out[1].to_tag
    assert h.cdrs[0].final_code == 486 and h.cdrs[0].ended_by == "carrier"
    assert h.cdrs[0].answered is None and h.cdrs[0].duration_s == 0
    h.advance(1.6)
    assert h.send_times(486) == [0.0, 0.5, 1.5]
    # ACK to a non-2xx carries the INVITE's branch (§17.1.1.3)
    assert h.deliver(ack(out[1].to_tag, branch="z9hG4bK-inv-1", number="1555003486")) == []
    h.advance(40)
    assert h.send_times(486) == [0.0, 0.5, 1.5]
    assert len(h.cdrs) == 1 and not h.carrier.calls


def test_reject_without_ack_gives_up_after_timer_h():
    h = Harness()
    h.deliver(invite("1555003503"))
    h.advance(60)
    assert h.send_times(503) == [0.0, 0.5, 1.5, 3.5, 7.5, 11.5, 15.5, 19.5, 23.5, 27.5, 31.5]
    assert not h.carrier.calls and len(h.cdrs) == 1


@pytest.mark.parametrize("code", [404, 486, 488, 503, 603])
def test_reject_codes(code):
    h = Harness()
    assert statuses(h.deliver(invite(f"1555003{code}"))) == [100, code]


def test_unmatched_number_gets_404():
    h = Harness()
    out = h.deliver(invite("4930123456"))
    assert statuses(out) == [100, 404]
    assert h.cdrs[0].route == "no-route"


# ------------------------------------------------------------------------ CANCEL

def test_cancel_ringing_call_200_and_487():
    h = Harness()
    out = h.deliver(invite("15550020"))
    tag = out[1].to_tag
    h.advance(5)
    res = h.deliver(cancel(number="15550020"))
    assert statuses(res) == [200, 487]
    assert res[0].cseq == (1, "CANCEL") and res[0].to_tag == tag
    assert res[1].cseq == (1, "INVITE") and res[1].to_tag == tag
    cdr = h.cdrs[0]
    assert cdr.final_code == 487 and cdr.ended_by == "cancel" and cdr.answered is None
    assert cdr.ended - cdr.received == pytest.approx(5)
    h.advance(0.6)
    assert h.send_times(487) == [5.0, 5.5]
    h.deliver(ack(tag, branch="z9hG4bK-inv-1", number="15550020"))
    h.advance(10)
    assert h.send_times(487) == [5.0, 5.5]
    # a retransmitted CANCEL gets the same 200 again (non-INVITE server transaction)
    assert statuses(h.deliver(cancel(number="15550020"))) == [200]


def test_cancel_after_answer_changes_nothing():
    h = Harness()
    answered_call(h)
    assert statuses(h.deliver(cancel())) == [200]
    assert not h.cdrs and h.carrier.calls["c1"].state == "confirmed"


def test_cancel_for_unknown_transaction_gets_481():
    h = Harness()
    assert statuses(h.deliver(cancel(branch="z9hG4bK-nothing"))) == [481]


def test_cancel_during_delayed_answer_closes_media():
    h = Harness()
    h.deliver(invite("15550010"))
    assert statuses(h.deliver(cancel(number="15550010"))) == [200, 487]
    assert h.closed == ["c1"]
    h.advance(5)
    assert [r.cseq[1] for r in h.responses(200)] == ["CANCEL"]


# ------------------------------------------------------------------------ BYE

def test_caller_bye_ends_call_and_writes_cdr():
    h = Harness()
    tag = answered_call(h)
    h.advance(7.25)
    out = h.deliver(in_dialog("BYE", tag, branch="z9hG4bK-bye-1"))
    assert statuses(out) == [200] and out[0].cseq == (2, "BYE")
    cdr = h.cdrs[0]
    assert cdr.ended_by == "caller" and cdr.final_code == 200
    assert cdr.duration_s == 7.25 and cdr.answered == T0 and cdr.codec == "PCMU"
    assert h.closed == ["c1"]
    # a retransmitted BYE gets the same 200 (Timer J), not a 481
    again = h.deliver(in_dialog("BYE", tag, branch="z9hG4bK-bye-1"))
    assert statuses(again) == [200] and bytes(again[0]) == bytes(out[0])
    # a new BYE for the finished dialog is 481
    assert statuses(h.deliver(in_dialog("BYE", tag, branch="z9hG4bK-bye-2", cseq=3))) == [481]
    assert len(h.cdrs) == 1


def test_carrier_hangs_up_after_3s_with_in_dialog_bye():
    h = Harness()
    out = h.deliver(invite("15550040"))
    tag = out[-1].to_tag
    h.deliver(ack(tag, branch="z9hG4bK-ack", number="15550040"))
    h.advance(2.9)
    assert not h.requests("BYE")
    h.advance(0.1)
    (t, bye, addr, tp), = h.requests("BYE")
    assert round(t - T0, 3) == 3.0
    # §12.2.1.1: Request-URI = remote target, Route = route set (UAS: Record-Route in order)
    assert bye.uri == "sip:alice@10.0.0.9:5062"
    assert bye.headers.get_all("Route") == ["<sip:127.0.0.1:5060;lr;ftag=abc>", "<sip:10.0.0.1;lr>"]
    assert addr == ("127.0.0.1", 5060) and tp == "udp"          # to the first (loose) route
    assert bye.from_tag == tag and parse_name_addr(bye.headers.get("From")).uri == "sip:15550040@example.com"
    assert bye.to_tag == "caller-tag" and parse_name_addr(bye.headers.get("To")).uri == "sip:4930111@example.com"
    assert bye.call_id == "call-1@test" and bye.cseq == (2, "BYE")
    assert bye.top_via.branch.startswith("z9hG4bK") and bye.top_via.port == 5070
    assert h.cdrs[0].ended_by == "carrier" and h.cdrs[0].duration_s == 3.0
    # §17.1.2: retransmitted T1, 2*T1, ... until a final response
    h.advance(1.6)
    assert [round(t - T0, 3) for t, *_ in h.requests("BYE")] == [3.0, 3.5, 4.5]
    resp = Response(200, "OK", bye.headers.copy())
    h.deliver(bytes(resp))
    h.advance(20)
    assert len(h.requests("BYE")) == 3 and not h.carrier.calls


def test_carrier_bye_answered_481_also_ends_transaction():
    h = Harness()
    out = h.deliver(invite("15550040"))
    h.deliver(ack(out[-1].to_tag, branch="z9hG4bK-ack", number="15550040"))
    h.advance(3)
    (_, bye, _, _), = h.requests("BYE")
    h.deliver(bytes(Response(481, "Call/Transaction Does Not Exist", bye.headers.copy())))
    h.advance(30)
    assert len(h.requests("BYE")) == 1 and not h.carrier.calls and len(h.cdrs) == 1


def test_carrier_bye_without_response_gives_up_after_timer_f():
    h = Harness()
    out = h.deliver(invite("15550040"))
    h.deliver(ack(out[-1].to_tag, branch="z9hG4bK-ack", number="15550040"))
    h.advance(3 + 40)
    times = [round(t - T0 - 3, 3) for t, *_ in h.requests("BYE")]
    assert times == [0.0, 0.5, 1.5, 3.5, 7.5, 11.5, 15.5, 19.5, 23.5, 27.5, 31.5]
    assert not h.carrier.calls


def test_carrier_bye_waits_for_the_ack():
    h = Harness()
    out = h.deliver(invite("15550040"))
    h.advance(3.2)                       # hangup timer fires before any ACK
    assert not h.requests("BYE")
    h.deliver(ack(out[-1].to_tag, branch="z9hG4bK-ack", number="15550040"))
    assert len(h.requests("BYE")) == 1


def test_bye_without_record_route_goes_to_contact():
    h = Harness()
    data = invite("15550040").replace(b"Record-Route: <sip:127.0.0.1:5060;lr;ftag=abc>\r\n", b"") \
                             .replace(b"Record-Route: <sip:10.0.0.1;lr>\r\n", b"")
    out = h.deliver(data)
    h.deliver(ack(out[-1].to_tag, branch="z9hG4bK-ack", number="15550040"))
    h.advance(3)
    (_, bye, addr, _), = h.requests("BYE")
    assert "Route" not in bye.headers and addr == ("10.0.0.9", 5062)


# ------------------------------------------------------------------------ other methods

def test_options_out_of_dialog_200_with_allow():
    h = Harness()
    opts = in_dialog("OPTIONS", "x", branch="z9hG4bK-opt").replace(b";tag=x", b"")
    out = h.deliver(opts)
    assert statuses(out) == [200]
    assert "BYE" in out[0].headers.get_all("Allow") and out[0].to_tag


def test_unknown_dialog_gets_481_and_other_methods_405():
    h = Harness()
    assert statuses(h.deliver(in_dialog("INFO", "nope", branch="z9hG4bK-i"))) == [481]
    reg = in_dialog("REGISTER", "x", branch="z9hG4bK-r").replace(b";tag=x", b"")
    out = h.deliver(reg)
    assert statuses(out) == [405] and "BYE" in out[0].headers.get_all("Allow")
    assert statuses(h.deliver(in_dialog("BYE", "x", branch="z9hG4bK-b").replace(b";tag=x", b""))) == [481]
    assert h.deliver(ack("nope", branch="z9hG4bK-a")) == []       # never answer an ACK


def test_in_dialog_info_dtmf_and_rtp_digits_go_to_cdr():
    h = Harness()
    tag = answered_call(h)
    h.run(h.carrier.on_dtmf("c1", "1", h.now))
    info = in_dialog("INFO", tag, branch="z9hG4bK-info", body="Signal=5\r\nDuration=160\r\n",
                     ctype="application/dtmf-relay")
    assert statuses(h.deliver(info)) == [200]
    h.run(h.carrier.on_dtmf("c1", "#", h.now))
    h.deliver(in_dialog("BYE", tag, branch="z9hG4bK-bye", cseq=3))
    assert h.cdrs[0].dtmf_heard == "15#"


def test_in_dialog_unsupported_method_405_and_reinvite_200():
    h = Harness()
    tag = answered_call(h)
    out = h.deliver(in_dialog("MESSAGE", tag, branch="z9hG4bK-m"))
    assert statuses(out) == [405]
    re = invite(branch="z9hG4bK-re", cseq=5).replace(
        b"To: <sip:1555000100@example.com>", f"To: <sip:1555000100@example.com>;tag={tag}".encode())
    out = h.deliver(re)
    assert statuses(out) == [200] and SessionDescription.parse(out[0].body).media[0].port == 40000
    assert h.carrier.calls["c1"].state == "confirmed"
    first = SessionDescription.parse(h.responses(200)[0].body).origin
    again = SessionDescription.parse(out[0].body).origin
    assert (again.sess_id, again.sess_version) == (first.sess_id, first.sess_version + 1)  # RFC 3264 §8
    assert statuses(h.deliver(re)) == [200]                           # retransmission: same 2xx
    h.advance(1.6)
    assert [r.cseq for r in h.responses(200)][-3:] == [(5, "INVITE")] * 3   # retransmitted until ACK
    h.deliver(ack(tag, branch="z9hG4bK-re-ack", cseq=5))
    n = len(h.responses(200))
    h.advance(30)
    assert len(h.responses(200)) == n and not h.cdrs


def test_garbage_is_dropped_and_bad_header_gets_400():
    h = Harness()
    assert h.deliver(b"hello world\r\n\r\n") == []
    bad = invite().replace(b"CSeq: 1 INVITE", b"CSeq: 1 INVITE").replace(
        b"From: \"Alice\" <sip:4930111@example.com>;tag=caller-tag", b"From: <<bad")
    out = h.deliver(bad)
    assert out == [] or statuses(out) == [400]
    assert h.carrier.stats["parse_errors"] >= 1


# ------------------------------------------------------------------------ CDR

def test_cdr_record_fields():
    h = Harness()
    tag = answered_call(h)
    h.advance(2)
    h.deliver(in_dialog("BYE", tag, branch="z9hG4bK-bye"))
    cdr, = h.cdrs
    assert cdr == CarrierCdr(
        carrier="carrier-t", call_id="call-1@test", from_="4930111", to="1555000100",
        from_uri="sip:4930111@example.com", to_uri="sip:1555000100@example.com",
        ruri="1555000100", route="answer-echo", from_tag="caller-tag",
        x_headers={"X-Case": "answer-echo", "X-Run-Id": "r42"}, transport="udp",
        received=T0, answered=T0, ended=T0 + 2, final_code=200, ended_by="caller", duration_s=2.0, codec="PCMU",
    )
    # the line on disk: these names, these JSON types, in this order
    assert cdr.to_json() == (
        '{"carrier":"carrier-t","call_id":"call-1@test","from":"4930111","to":"1555000100",'
        '"from_uri":"sip:4930111@example.com","to_uri":"sip:1555000100@example.com","ruri":"1555000100",'
        '"route":"answer-echo","from_tag":"caller-tag","x_headers":{"X-Case":"answer-echo","X-Run-Id":"r42"},'
        '"transport":"udp","received":1700000000.0,"answered":1700000000.0,"ended":1700000002.0,'
        '"final_code":200,"ended_by":"caller","duration_s":2.0,"codec":"PCMU","rtp_packets_in":0,'
        '"rtp_packets_out":0,"rtp_payload_types_in":[],"rtp_payload_types_out":[],"dtmf_heard":"",'
        '"dtmf_events":[]}')
    assert CarrierCdr.from_json(cdr.to_json()) == cdr


def test_rtp_stop_and_silence_routes():
    plan = parse_plan({"version": 1, "routes": [
        {"prefix": "1", "rtp_stop_after_s": 2}, {"prefix": "2", "media": "silence"}]})
    h = Harness(plan=plan)
    out = h.deliver(invite("1"))
    h.deliver(ack(out[-1].to_tag, branch="z9hG4bK-a", number="1"))
    h.advance(2)
    assert h.stopped == ["c1"]
    h2 = Harness(plan=plan)
    h2.deliver(invite("2"))
    assert h2.media["c1"].spec.echo is False and h2.media["c1"].spec.mode == "silence"


def test_shutdown_ends_live_calls():
    h = Harness()
    tag = answered_call(h)
    h.deliver(invite("15550020", branch="z9hG4bK-2", call_id="call-2@test"))
    h.run(h.carrier.shutdown(h.now))
    assert len(h.requests("BYE")) == 1 and statuses(h.responses(480)) == [480]
    assert sorted(c.ended_by for c in h.cdrs) == ["carrier", "carrier"]
    assert tag


# ------------------------------------------------------------------------ media

def _rtp(pt: int, seq: int, ts: int, payload: bytes) -> bytes:
    return bytes([0x80, pt]) + seq.to_bytes(2, "big") + ts.to_bytes(4, "big") + b"\x00\x00\x00\x01" + payload


def test_media_session_echo_counts_and_rfc4733_digits():
    m = MediaSession(MediaSpec(dtmf_pt=101))
    assert m.on_packet(_rtp(0, 1, 160, b"\xff" * 160)) == (True, [])
    # digit 5: three updates and three end packets share one timestamp -> one digit
    for i, dur in enumerate([160, 320, 480]):
        heard = m.on_packet(_rtp(101, 2 + i, 1000, bytes([5, 10]) + dur.to_bytes(2, "big")))[1]
        assert heard == ([HeardDigit("5", "rfc4733")] if i == 0 else [])
    for i in range(3):
        m.on_packet(_rtp(101, 5 + i, 1000, bytes([5, 0x80 | 10]) + (640).to_bytes(2, "big")))
    m.on_packet(_rtp(101, 8, 3000, bytes([11, 10, 0, 160])))
    assert m.digits == ["5", "#"]
    assert m.packets_in == 8 and m.packets_out == 8
    m.stopped = True
    assert m.on_packet(_rtp(0, 9, 320, b"\xff"))[0] is False
    assert MediaSession(MediaSpec(mode="silence")).on_packet(_rtp(0, 1, 1, b"x")) == (False, [])
    assert m.payload_types_in == {0, 101} and m.payload_types_out == {0, 101}


# ------------------------------------------------------------------------ issue 3: per-carrier, blackhole

SDP_ALL = (
    "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
    "m=audio 6000 RTP/AVP 0 8 9 111 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:8 PCMA/8000\r\n"
    "a=rtpmap:9 G722/8000\r\na=rtpmap:111 opus/48000/2\r\n"
    "a=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-16\r\n"
)


def test_blackhole_sends_nothing_absorbs_retransmissions_and_times_out():
    h = Harness(name="carrier-c")
    assert h.deliver(invite("16660020")) == []
    h.advance(4)
    assert h.deliver(invite("16660020")) == []                 # retransmission: absorbed, same call
    assert len(h.carrier.calls) == 1 and h.carrier.stats["retransmissions_absorbed"] == 1
    assert not h.media and not h.cdrs
    h.advance(28)                                              # 64*T1 after the INVITE
    assert h.sent == []
    cdr, = h.cdrs
    assert (cdr.final_code, cdr.ended_by, cdr.answered) == (None, "timeout", None)
    assert cdr.route == "failover-blackhole-on-c" and cdr.ended - cdr.received == pytest.approx(32)
    assert not h.carrier.calls


def test_blackhole_cancel_is_swallowed_and_ends_the_cdr():
    h = Harness(name="carrier-c")
    h.deliver(invite("16660020"))
    h.advance(2)
    assert h.deliver(cancel(number="16660020")) == []
    assert [(c.final_code, c.ended_by) for c in h.cdrs] == [(None, "cancel")]
    assert h.deliver(cancel(number="16660020")) == [] and h.deliver(invite("16660020")) == []
    h.advance(40)
    assert len(h.cdrs) == 1 and h.sent == [] and not h.carrier.calls


def test_blackhole_call_ended_by_shutdown_sends_nothing():
    h = Harness(name="carrier-c")
    h.deliver(invite("16660020"))
    h.run(h.carrier.shutdown(h.now))
    assert h.sent == [] and h.cdrs[0].final_code is None


@pytest.mark.parametrize("name, number, want", [
    ("carrier-c", "16660010", [100, 503]),
    ("carrier-a", "16660010", [100, 180, 200]),
    ("carrier-b", "16660020", [100, 180, 200]),
    ("carrier-c", "1666000123", [100, 180, 200]),
    ("carrier-a", "1666000123", [100, 180, 200]),
])
def test_per_carrier_routes(name, number, want):
    h = Harness(name=name)
    assert statuses(h.deliver(invite(number))) == want


@pytest.mark.parametrize("number, codecs", [
    ("15550050", ["PCMA", "telephone-event"]),
    ("15550051", ["PCMU", "telephone-event"]),
    ("15550052", ["G722", "telephone-event"]),
    ("15550053", ["opus", "telephone-event"]),
])
def test_codec_routes_answer_their_codec(number, codecs):
    h = Harness()
    out = h.deliver(invite(number, sdp=SDP_ALL))
    assert statuses(out) == [100, 180, 200]
    assert SessionDescription.parse(out[-1].body).audio.codec_names() == codecs
    spec = h.media["c1"].spec
    assert spec.codec == codecs[0] and spec.dtmf_pt == 101
    assert spec.clock_rate == (48000 if codecs[0] == "opus" else 8000)


def test_g729_only_route_gets_488_for_usual_offers():
    h = Harness()
    assert statuses(h.deliver(invite("15550054", sdp=SDP_ALL))) == [100, 488]
    assert h.cdrs[0].final_code == 488 and not h.media


def test_media_timeout_route_sends_silence_and_stops_after_3s():
    h = Harness()
    out = h.deliver(invite("15550070"))
    h.deliver(ack(out[-1].to_tag, branch="z9hG4bK-a", number="15550070"))
    assert h.media["c1"].spec.mode == "silence" and h.started == [(0.0, "c1")]
    h.advance(2.9)
    assert h.stopped == []
    h.advance(0.2)
    assert h.stopped == ["c1"] and h.carrier.calls["c1"].state == "confirmed"   # the call stays up


def test_dtmf_route_is_silence_with_inband_detection():
    h = Harness()
    h.deliver(invite("15550080"))
    spec = h.media["c1"].spec
    assert spec.mode == "silence" and spec.inband == ((0, "PCMU"), (8, "PCMA"))


def test_early_media_starts_generation_at_the_183():
    h = Harness()
    h.deliver(invite("15550060"))
    h.advance(2)
    assert h.started == [(0.0, "c1"), (2.0, "c1")]       # 183 and 200 (start is idempotent)


def test_info_dtmf_bodies_and_order_with_media_digits():
    h = Harness()
    tag = answered_call(h)
    bodies = [("application/dtmf-relay", "Signal=1\r\nDuration=160\r\n"),
              ("application/dtmf-relay", "Signal=10\r\nDuration=160\r\n"),
              ("application/dtmf-relay", "signal= 11\r\nDuration=160\r\n"),
              ("application/dtmf", "5"), ("application/dtmf", "11"), ("application/dtmf", "x"),
              ("text/plain", "Signal=9")]
    for i, (ctype, body) in enumerate(bodies):
        h.run(h.carrier.on_dtmf("c1", "0", h.now, "inband") if i == 3 else [])
        out = h.deliver(in_dialog("INFO", tag, branch=f"z9hG4bK-info{i}", cseq=3 + i, body=body, ctype=ctype))
        assert statuses(out) == [200]
    h.deliver(in_dialog("BYE", tag, branch="z9hG4bK-bye", cseq=20))
    cdr = h.cdrs[0]
    assert cdr.dtmf_heard == "1*#05#"
    assert [e.via for e in cdr.dtmf_events] == ["info"] * 3 + ["inband"] + ["info"] * 2
    assert all(e.at == T0 for e in cdr.dtmf_events)
    assert cdr.dtmf_events[0] == DtmfEvent("1", "info", T0)
    assert cdr.to_dict()["dtmf_events"][3] == {"digit": "0", "via": "inband", "at": T0}


def test_digits_not_collected_when_route_says_no():
    plan = parse_plan({"version": 1, "routes": [{"prefix": "1", "collect_dtmf": False}]})
    h = Harness(plan=plan)
    out = h.deliver(invite("1"))
    assert h.media["c1"].spec.inband == ()
    h.run(h.carrier.on_dtmf("c1", "5", h.now))
    h.deliver(in_dialog("INFO", out[-1].to_tag, branch="z9hG4bK-i", number="1", body="5", ctype="application/dtmf"))
    h.deliver(in_dialog("BYE", out[-1].to_tag, branch="z9hG4bK-b", number="1", cseq=3))
    assert h.cdrs[0].dtmf_heard == "" and h.cdrs[0].dtmf_events == ()


# ------------------------------------------------------------------------ media generation / in-band DTMF



def _packets_of(pcm: bytes, encode=ulaw_encode, pt: int = 0, ssrc: int = 7) -> list[bytes]:
    """16-bit PCM -> 20 ms G.711 RTP packets."""
    payload = encode(pcm)
    return [bytes(RtpPacket(payload_type=pt, sequence_number=i, timestamp=160 * i, ssrc=ssrc,
                            payload=payload[160 * i:160 * (i + 1)]))
            for i in range(len(payload) // 160)]


def test_silence_generation_pt_seq_ts_ssrc_and_latching():
    m = MediaSession(MediaSpec(mode="silence", codec="PCMA", payload_type=8, remote=("127.0.0.1", 6000)))
    assert m.next_packet() is None                       # not started (no 183/200 yet)
    m.start()
    sent = [m.next_packet() for _ in range(3)]
    pkts = [RtpPacket.parse(data) for data, _ in sent]
    assert all(addr == ("127.0.0.1", 6000) for _, addr in sent)
    assert [p.payload_type for p in pkts] == [8, 8, 8] and [p.marker for p in pkts] == [True, False, False]
    assert [(p.sequence_number - pkts[0].sequence_number) & 0xFFFF for p in pkts] == [0, 1, 2]
    assert [(p.timestamp - pkts[0].timestamp) & 0xFFFFFFFF for p in pkts] == [0, 160, 320]
    assert len({p.ssrc for p in pkts}) == 1 and pkts[0].payload == b"\xd5" * 160
    m.on_packet(_rtp(8, 1, 0, b"\xd5" * 160), ("127.0.0.1", 7000))
    assert m.next_packet()[1] == ("127.0.0.1", 7000)    # latched to where the peer sends from
    assert (m.packets_out, m.payload_types_out) == (4, {8})
    m.stopped = True
    assert m.next_packet() is None


@pytest.mark.parametrize("codec, pt, rate, size, step", [
    ("PCMU", 0, 8000, 160, 160), ("G722", 9, 8000, 160, 160), ("opus", 111, 48000, 3, 960),
    ("G729", 18, 8000, 20, 160),
])
def test_generated_frame_per_codec(codec, pt, rate, size, step):
    m = MediaSession(MediaSpec(mode="silence", codec=codec, payload_type=pt, clock_rate=rate, remote=("h", 1)))
    m.start()
    a, b = (RtpPacket.parse(m.next_packet()[0]) for _ in range(2))
    assert a.payload_type == pt and len(a.payload) == size and (b.timestamp - a.timestamp) & 0xFFFFFFFF == step


def test_tone_mode_is_1khz_and_echo_mode_generates_nothing():
    m = MediaSession(MediaSpec(mode="tone", codec="PCMU", payload_type=0, remote=("h", 1)))
    m.start()
    payload = RtpPacket.parse(m.next_packet()[0]).payload
    pcm = ulaw_decode(payload)
    samples = [int.from_bytes(pcm[i:i + 2], "little", signed=True) for i in range(0, len(pcm), 2)]
    assert samples[:8] == samples[8:16] and max(samples) > 5000          # period of 8 samples = 1 kHz
    assert InbandDtmfDetector().feed(pcm * 50) == []
    echo = MediaSession(MediaSpec(remote=("h", 1)))
    echo.start()
    assert not echo.sending and echo.next_packet() is None


@pytest.mark.parametrize("encode, pt, name", [(ulaw_encode, 0, "PCMU"), (alaw_encode, 8, "PCMA")])
def test_inband_digits_from_g711_rtp(encode, pt, name):
    m = MediaSession(MediaSpec(mode="silence", codec=name, payload_type=pt, inband=((pt, name),)))
    heard = []
    for p in _packets_of(dtmf_tone_pcm("0123456789*#", level_dbm0=-20), encode, pt):
        heard += m.on_packet(p)[1]
    assert "".join(h.digit for h in heard) == "0123456789*#" and {h.via for h in heard} == {"inband"}
    assert m.digits == list("0123456789*#")


def test_no_inband_detection_without_g711_spec():
    m = MediaSession(MediaSpec(mode="silence", codec="PCMU", payload_type=0))
    assert all(m.on_packet(p)[1] == [] for p in _packets_of(dtmf_tone_pcm("123")))


def _event_packets(digit: int, ts: int, seq: int, updates: int = 4) -> list[bytes]:
    out = [_rtp(101, seq + i, ts, bytes([digit, 10]) + (160 * (i + 1)).to_bytes(2, "big")) for i in range(updates)]
    out += [_rtp(101, seq + updates + i, ts, bytes([digit, 0x8A]) + (160 * updates).to_bytes(2, "big"))
            for i in range(3)]
    return out


def test_rfc4733_takes_precedence_over_tones_for_the_same_press():
    """A sender sending each press both as events and as tones: each digit counted once."""
    m = MediaSession(MediaSpec(mode="silence", dtmf_pt=101, inband=((0, "PCMU"),)))
    audio = _packets_of(dtmf_tone_pcm("47", on_ms=100, off_ms=100))      # 10 packets per digit
    heard = []
    for press, digit in enumerate((4, 7)):
        events = iter(_event_packets(digit, 8000 * (press + 1), 100 * (press + 1), updates=5))
        for i, p in enumerate(audio[10 * press:10 * press + 10]):
            heard += m.on_packet(p)[1]
            if i < 5 or i in (5, 6):                                      # events interleaved with the tone
                for e in [next(events)] + ([next(events)] if i == 6 else []):
                    heard += m.on_packet(e)[1]
    assert [(h.digit, h.via) for h in heard] == [("4", "rfc4733"), ("7", "rfc4733")]


def test_event_after_inband_detection_of_the_same_press_is_not_counted_again():
    m = MediaSession(MediaSpec(mode="silence", dtmf_pt=101, inband=((0, "PCMU"),)))
    audio = _packets_of(dtmf_tone_pcm("9", on_ms=100, off_ms=100))
    heard = []
    for p in audio[:3]:                                  # tone detected after 2-3 packets
        heard += m.on_packet(p)[1]
    for e in _event_packets(9, 5000, 1):                 # late events for the same press
        heard += m.on_packet(e)[1]
    for p in audio[3:]:
        heard += m.on_packet(p)[1]
    for e in _event_packets(9, 9000, 20):                # a later press by RFC 4733 only
        heard += m.on_packet(e)[1]
    assert [(h.digit, h.via) for h in heard] == [("9", "inband"), ("9", "rfc4733")]
