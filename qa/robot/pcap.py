"""Keywords over captures: thin wrappers over :mod:`qa.analysis.assertions`.

``Analyze Pcap`` returns a report that the other keywords take; each assertion keyword
also accepts a path, which it analyses first.
"""

from __future__ import annotations

from pathlib import Path

from robot.api import logger
from robot.api.deco import keyword

from qa.analysis import assertions
from qa.analysis.engine import Report, analyze


def _report(pcap: Report | str | Path) -> Report:
    return pcap if isinstance(pcap, Report) else analyze(pcap)


class PcapKeywords:
    """Judge what went over the wire: malformed SIP, media both ways, DTMF, failed calls."""

    def __init__(self, ctx=None) -> None:
        self.ctx = ctx

    @keyword
    def analyze_pcap(self, path: str) -> Report:
        """Analyse the capture at ``path`` once; pass the result to the other keywords."""
        report = analyze(path)
        logger.info(f"{path}: {report.packets} packets, {report.sip_messages} SIP messages, "
                    f"{report.calls} calls, {len(report.findings)} findings")
        return report

    @keyword
    def pcap_should_have_no_malformed_sip(self, pcap: Report | str) -> None:
        """No malformed SIP/SDP message in the capture (a report or a path)."""
        assertions.assert_no_malformed_sip(_report(pcap))

    @keyword
    def call_should_have_media_both_ways(self, pcap: Report | str, call_id: str, min_packets: int = 1) -> None:
        """RTP of ``call_id`` flowed in both directions."""
        assertions.assert_media_both_ways(_report(pcap), call_id, int(min_packets))

    @keyword
    def dtmf_seen_on_wire_should_be(self, pcap: Report | str, call_id: str, digits: str) -> None:
        """The RFC 4733 digits in the RTP of ``call_id`` are exactly ``digits``."""
        assertions.assert_dtmf_on_wire(_report(pcap), call_id, digits)

    @keyword
    def pcap_should_have_no_failed_calls(self, pcap: Report | str) -> None:
        """No failed, unanswered or BYE-less call in the capture."""
        assertions.assert_no_failed_calls(_report(pcap))
