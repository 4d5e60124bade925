"""The HTML ladder: self-contained, one column per endpoint, SDP and findings on their arrow."""

from html.parser import HTMLParser

from qa.analysis.calls import CallSummary, LadderEvent
from qa.analysis.engine import analyze
from qa.analysis.findings import Finding
from qa.analysis.ladder import endpoints, render_ladder

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
