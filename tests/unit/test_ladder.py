"""The HTML ladder: self-contained, one column per endpoint, SDP and findings on their arrow."""

from html.parser import HTMLParser

from qa.analysis.calls import CallSummary, LadderEvent
from qa.analysis.engine import analyze
from qa.analysis.findings import Finding
from qa.report.ladder import endpoints, render_ladder

from tests.unit.test_analysis_engine import CALL_ID, build_call_pcap


class _Tags(HTMLParser):
    def __init__(self):
        super().__init__()
        self.tags, self.attrs = [], []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        self.attrs += [v or "" for _, v in attrs]


def _summary() -> CallSummary:
    bad = Finding(1, 10.0, "x<1>", "error", "sip.header.syntax", "CSeq is not <number> <method>", 42)
    events = [LadderEvent(1, 10.0, "10.0.0.1:5060", "10.0.0.2:5060", "udp", "INVITE", "1 INVITE", True,
                          sdp="v=0\r\nm=audio 4000 RTP/AVP 0\r\n", message="INVITE sip:x SIP/2.0", findings=[bad]),
              LadderEvent(2, 10.25, "10.0.0.2:5060", "10.0.0.1:5060", "udp", "200 OK", "1 INVITE", False),
              LadderEvent(3, 10.5, "10.0.0.1:5060", "10.0.0.2:5060", "udp", "INVITE", "1 INVITE", True,
                          retransmission=True),
              LadderEvent(4, 11.0, "10.0.0.2:5060", "[fd00::1]:5060", "udp", "BYE", "2 BYE", True)]
    return CallSummary("x<1>", "call", 1, 10.0, 11.0, events=events, findings=[bad])


def test_endpoints_in_order_of_appearance():
    assert endpoints(_summary().events) == ["10.0.0.1:5060", "10.0.0.2:5060", "[fd00::1]:5060"]


def test_self_contained_and_escaped():
    html = render_ladder(_summary())
    parser = _Tags()
    parser.feed(html)
    assert "script" not in parser.tags and "link" not in parser.tags and "img" not in parser.tags
    assert not any(a.startswith(("http:", "https:", "//")) for a in parser.attrs)
    assert "x&lt;1&gt;" in html and "x<1>" not in html
    assert parser.tags.count("svg") == 5                     # header + 4 arrows
    assert html.count("<details>") == 2                      # SDP + message of frame 1
    assert "sip.header.syntax at byte 42" in html
    assert "(retransmission)" in html and "+250.0 ms" in html


def test_ladder_of_a_real_call(tmp_path):
    path = build_call_pcap(tmp_path / "c.pcap")
    report = analyze(path, keep_raw_for=CALL_ID)
    html = render_ladder(report.call(CALL_ID))
    assert html.count("<polygon") == 7                      # 7 SIP messages
    assert "m=audio 4000 RTP/AVP 0 101" in html and "m=audio 6000" in html
    assert "10.1.0.1:5062" in html and "180 Ringing" in html


def _failover() -> list[LadderEvent]:
    """customer → platform → carrier c (no answer) → carrier d (200)."""
    cust, plat, c, d = "127.0.0.1:40000", "127.0.0.1:5060", "127.0.0.1:42500", "127.0.0.1:42600"
    return [LadderEvent(1, 1.0, cust, plat, "udp", "INVITE", "1 INVITE", True),
            LadderEvent(2, 1.0, plat, cust, "udp", "407 Proxy Authentication Required", "1 INVITE", False),
            LadderEvent(3, 1.1, cust, plat, "udp", "INVITE", "2 INVITE", True),
            LadderEvent(4, 1.1, plat, c, "udp", "INVITE", "2 INVITE", True),
            LadderEvent(5, 1.6, plat, c, "udp", "INVITE", "2 INVITE", True, retransmission=True),
            LadderEvent(6, 4.1, plat, d, "udp", "INVITE", "2 INVITE", True),
            LadderEvent(7, 4.2, d, plat, "udp", "200 OK", "2 INVITE", False),
            LadderEvent(8, 4.2, plat, cust, "udp", "200 OK", "2 INVITE", False)]


def test_columns_are_named_by_role_and_the_answering_carrier_by_name():
    from qa.report.ladder import roles

    named = roles(_failover(), carrier="carrier-d")
    assert named == {"127.0.0.1:40000": "customer", "127.0.0.1:5060": "platform",
                     "127.0.0.1:42500": "carrier 1", "127.0.0.1:42600": "carrier-d"}
    assert roles(_failover()[:4]) == {"127.0.0.1:40000": "customer", "127.0.0.1:5060": "platform",
                                      "127.0.0.1:42500": "carrier"}
    html = render_ladder(CallSummary("f", "call", 1, 1.0, 4.2, events=_failover()), carrier="carrier-d")
    assert ">customer</text>" in html and ">platform</text>" in html and ">carrier-d</text>" in html


def test_the_ladder_says_why_the_case_failed_and_never_prints_none():
    call = CallSummary("f", "call", 1, 1.0, 4.2, events=_failover())   # no PDD, codec, MOS: unknown
    html = render_ladder(call, reasons=["wire: one-way audio: carrier→customer 0 RTP packets"])
    assert 'class="error">wire: one-way audio: carrier→customer 0 RTP packets</div>' in html
    assert "None" not in html
