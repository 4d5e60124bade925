"""Assertions over a capture's :class:`~qa.analysis.engine.Report`, for pytest and Robot.

Each raises ``AssertionError`` with a message that says what was on the wire, so a
failing test reads like a finding: ``assert_no_malformed_sip(analyze("call.pcap"))``.
"""

from __future__ import annotations

from qa.analysis.calls import CallSummary
from qa.analysis.engine import Report
from qa.analysis.findings import is_malformed

__all__ = ["assert_no_malformed_sip", "assert_media_both_ways", "assert_dtmf_on_wire",
           "assert_no_failed_calls", "find_call"]

_SHOWN = 5


def find_call(report: Report, call_id: str) -> CallSummary:
    """The summary of ``call_id``; AssertionError naming the Call-IDs there are."""
    call = report.call(call_id)
    if call is None:
        known = ", ".join(c.call_id for c in report.summaries[:_SHOWN]) or "none"
        raise AssertionError(f"{report.file}: no Call-ID {call_id!r} in the capture (first seen: {known})")
    return call


def assert_no_malformed_sip(report: Report) -> None:
    """No malformed SIP or SDP message (strict checker errors) in the capture."""
    bad = [f for f in report.findings if is_malformed(f)]
    if bad:
        lines = "; ".join(f"frame {f.frame}: {f.rule}: {f.reason}" for f in bad[:_SHOWN])
        more = f" (and {len(bad) - _SHOWN} more)" if len(bad) > _SHOWN else ""
        raise AssertionError(f"{report.file}: {len(bad)} malformed SIP/SDP message(s): {lines}{more}")


def assert_media_both_ways(report: Report, call_id: str, min_packets: int = 1) -> None:
    """RTP flowed caller→callee and callee→caller (at least ``min_packets`` each way)."""
    call = find_call(report, call_id)
    fwd, back = call.media_packets("forward"), call.media_packets("backward")
    if fwd < min_packets or back < min_packets:
        raise AssertionError(f"call {call_id}: RTP caller->callee {fwd} packets, callee->caller "
                             f"{back} packets (want at least {min_packets} each way)")


def assert_dtmf_on_wire(report: Report, call_id: str, digits: str) -> None:
    """The RFC 4733 digits seen in the call's RTP (any direction) are exactly ``digits``."""
    call = find_call(report, call_id)
    if call.dtmf_rtp != str(digits):
        info = f"; SIP INFO carried {call.dtmf_info!r}" if call.dtmf_info else ""
        raise AssertionError(f"call {call_id}: RFC 4733 digits on the wire {call.dtmf_rtp!r}, "
                             f"expected {str(digits)!r}{info}")


def assert_no_failed_calls(report: Report) -> None:
    """No call failed, went unanswered without a final response, or lost its BYE."""
    rules = ("call.failed", "call.no-final", "call.no-bye")
    bad = [f for f in report.findings if f.rule in rules]
    if bad:
        lines = "; ".join(f"{f.call_id}: {f.reason}" for f in bad[:_SHOWN])
        raise AssertionError(f"{report.file}: {len(bad)} failed call(s): {lines}")
