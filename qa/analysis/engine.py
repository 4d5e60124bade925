"""One streaming pass over a capture: SIP checked and correlated, RTP measured (DESIGN §9).

``analyze(path)`` reads :func:`qa.capture.read_payloads` once. UDP datagrams go to media
when an SDP announced their destination (:class:`~qa.analysis.rtp.MediaRegistry`), else
to SIP when :class:`~qa.analysis.sniff.SipPorts` says so; TCP/SCTP/WebSocket payloads are
framed SIP messages already. Every SIP message goes through the strict checkers
(``qa.sip.strict.check_message``, ``qa.sdp.strict.check_sdp``) and the lenient reader
(``qa.sip.lenient.read``) whose fields feed :class:`~qa.analysis.calls.CallTracker`.

Memory is bounded: state for live calls only, findings capped per rule, at most
``keep_calls`` call summaries kept in the :class:`Report` (every summary still goes to
``on_call``), and small memos (:class:`~qa.analysis.memo.Memo`) of the strict checks and SDP parsing
for byte-identical input (retransmissions; SDP bodies a load generator repeats).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable

from qa.analysis.calls import CallSummary, CallTracker, Limits
from qa.analysis.findings import Finding, FindingSink
from qa.analysis.rtp import is_rtcp, looks_like_rtp
from qa.analysis.memo import Memo, fewer_collections
from qa.analysis.sipevent import endpoint, is_sdp, sdp_media, to_event
from qa.analysis.sniff import SipPorts
from qa.analysis.parallel import checked_items, worth_parallel
from qa.capture.model import CaptureProblem, CaptureStats, Payload
from qa.errors import Problem

__all__ = ["Report", "Analyzer", "analyze"]

@dataclass
class Report:
    """What one capture amounts to (serialised by :mod:`qa.report.pcap`)."""

    file: str
    packets: int = 0
    bytes: int = 0
    duration_s: float = 0.0
    sip_messages: int = 0
    calls: int = 0                 # INVITE dialogs
    dialogs: int = 0               # every Call-ID
    findings: list[Finding] = field(default_factory=list)
    suppressed: dict[str, int] = field(default_factory=dict)
    severity_counts: dict[str, int] = field(default_factory=dict)
    rule_counts: dict[str, int] = field(default_factory=dict)
    summaries: list[CallSummary] = field(default_factory=list)
    summaries_dropped: int = 0
    stats: dict[str, object] = field(default_factory=dict)

    @property
    def errors(self) -> int:
        return self.severity_counts.get("error", 0)

    @property
    def exit_code(self) -> int:
        """0 clean, 1 when any error-severity finding exists (DESIGN §7)."""
        return 1 if self.errors else 0

    def call(self, call_id: str) -> CallSummary | None:
        return next((c for c in self.summaries if c.call_id == call_id), None)


def _checkers() -> tuple[Callable[[bytes], list[Problem]], Callable[[bytes], object],
                         Callable[[bytes], list[Problem]]]:
    """The strict SIP check, the lenient reader and the strict SDP check."""
    from qa.sdp.strict import check_sdp
    from qa.sip import lenient, strict

    return strict.check_message, lenient.read, check_sdp


class Analyzer:
    """Feed capture items in order, then :meth:`finish` for the :class:`Report`."""

    def __init__(self, name: str, *, on_call: Callable[[CallSummary], None] | None = None,
                 limits: Limits | None = None, keep_raw_for: str | None = None,
                 keep_calls: int = 10_000, per_rule: int = 200, check_sdp_bodies: bool = True,
                 checkers: tuple | None = None) -> None:
        self.report = Report(file=name)
        self.sink = FindingSink(per_rule)
        self.on_call = on_call
        self.keep_calls = keep_calls
        self.keep_raw_for = keep_raw_for
        self.tracker = CallTracker(self.sink, on_finish=self._finished, limits=limits,
                                   keep_raw_for=keep_raw_for)
        self.ports = SipPorts()
        check_message, self.read, check_sdp = checkers or _checkers()
        self.check_message = Memo(check_message)
        self.check_sdp = Memo(check_sdp) if check_sdp_bodies and check_sdp else None
        self.media_of = Memo(sdp_media)
        self.counts = {"payloads": 0, "udp": 0, "rtcp": 0, "rtp_unmatched": 0, "other": 0,
                       "sip_unread": 0, "problems": 0}

    # -- input -----------------------------------------------------------------------
    def feed(self, item: Payload | CaptureProblem, problems: list[Problem] | None = None) -> None:
        """Take the next item; ``problems``, when given, are the strict SIP check's of
        ``item.data``, done beforehand (:mod:`qa.analysis.parallel`)."""
        if not isinstance(item, Payload):
            self.counts["problems"] += 1
            self.sink.emit(item.frame, item.time, None, item.rule, item.reason,
                           severity=item.severity)
            return
        self.counts["payloads"] += 1
        heap = self.tracker._heap
        if heap and heap[0][0] <= item.time:
            self.tracker.advance(item.time)
        try:
            if item.transport == "udp":
                self._udp(item, problems)
            else:
                self._sip(item, problems)
        except Exception as exc:  # noqa: BLE001 - a bug below must not end a long analysis
            self.sink.emit(item.frame, item.time, None, "analysis.internal-error",
                           f"frame not analysed ({type(exc).__name__}: {exc})", severity="error")

    def _udp(self, item: Payload, problems: list[Problem] | None) -> None:
        data = item.data
        self.counts["udp"] += 1
        if data and data[0] >> 6 == 2:
            if is_rtcp(data):  # RTP never uses PT 72-76 (RFC 5761 §4)
                self.counts["rtcp"] += 1
                return
            target = self.tracker.media.lookup(item.dst, item.dport, item.src, item.sport)
            if target is not None:
                if len(data) < 12:
                    self.counts["rtp_unmatched"] += 1
                else:
                    self.tracker.on_rtp(item.frame, item.time, endpoint(item.src, item.sport),
                                        endpoint(item.dst, item.dport), data, target)
                return
        if self.ports.classify(data, item.sport, item.dport):
            self.ports.add(item.sport)
            self.ports.add(item.dport)
            self._sip(item, problems)
        elif looks_like_rtp(data):
            self.counts["rtp_unmatched"] += 1
        else:
            self.counts["other"] += 1

    def _sip(self, item: Payload, problems: list[Problem] | None) -> None:
        report = self.report
        report.sip_messages += 1
        data = item.data
        if problems is None:
            problems = self.check_message(data)
        msg = self.read(data)
        call_id = msg.call_id if msg is not None else None
        emit = self.sink.emit
        findings = [emit(item.frame, item.time, call_id, p.rule, p.reason, severity=p.severity,
                         offset=p.offset) for p in problems]
        if msg is None or not call_id:
            self.counts["sip_unread"] += 1
            if not problems:
                emit(item.frame, item.time, None, "sip.unreadable",
                     "looks like SIP but no Call-ID could be read", offset=0)
            return
        ev = to_event(msg, item, keep_raw=call_id == self.keep_raw_for, media_of=self.media_of,
                      with_headers=call_id not in self.tracker.live)
        if msg.body and self.check_sdp is not None and is_sdp(msg.content_type):
            base = msg.body_offset
            findings += [emit(item.frame, item.time, call_id, p.rule, p.reason,
                              severity=p.severity, offset=base + p.offset)
                         for p in self.check_sdp(msg.body)]
        self.tracker.on_sip(ev, findings)

    # -- output ----------------------------------------------------------------------
    def _finished(self, summary: CallSummary) -> None:
        if len(self.report.summaries) < self.keep_calls:
            self.report.summaries.append(summary)
        else:
            self.report.summaries_dropped += 1
        if self.on_call is not None:
            self.on_call(summary)

    def finish(self, packets: int | None = None, nbytes: int | None = None,
               duration: float | None = None, capture_stats: dict[str, object] | None = None) -> Report:
        """Close every live call and fill the report's counters."""
        self.tracker.close()
        report, sink, tracker = self.report, self.sink, self.tracker
        report.packets = packets if packets is not None else self.counts["payloads"]
        report.bytes = nbytes or 0
        report.duration_s = round(duration or 0.0, 6)
        report.calls, report.dialogs = tracker.calls, tracker.dialogs
        report.findings = sorted(sink.findings, key=lambda f: (f.frame or 0, f.rule))
        report.suppressed = dict(sink.dropped)
        report.severity_counts = dict(sink.by_severity)
        report.rule_counts = dict(sink.by_rule)
        report.stats = {
            "error_responses": dict(tracker.error_responses.most_common()),
            "retransmissions": tracker.retransmissions,
            "rtp": {"packets": tracker.rtp_packets, "streams": tracker.rtp_streams,
                    "rtcp": self.counts["rtcp"], "unmatched": self.counts["rtp_unmatched"]},
            "udp_other": self.counts["other"],
            "sip_unread": self.counts["sip_unread"],
            "sip_ports": sorted(self.ports.ports),
            "capture": capture_stats or {},
        }
        return report


def analyze_items(name: str, items: Iterable[Payload | CaptureProblem], **kwargs) -> Report:
    """Analyse an already-open stream of payloads (tests, live capture)."""
    analyzer = Analyzer(name, **kwargs)
    for item in items:
        analyzer.feed(item)
    return analyzer.finish()


def analyze(path: str | Path, *, on_call: Callable[[CallSummary], None] | None = None,
            progress: Callable[[int], None] | None = None, parallel: bool | None = None,
            **kwargs) -> Report:
    """Analyse the capture at ``path`` in one pass; ``PcapError`` (exit 2) if unreadable.

    ``progress`` is called now and then with the number of capture bytes read so far.
    ``parallel`` reads and strict-checks in a second process (:mod:`qa.analysis.parallel`;
    the same report, sooner); None decides by the file's size and the CPUs there are.
    Injected ``checkers`` always run here, in one process.
    """
    from qa.capture import CaptureReader

    path = Path(path)
    reader = CaptureReader(path)
    analyzer = Analyzer(str(path), on_call=on_call, **kwargs)
    if parallel is None:
        parallel = "checkers" not in kwargs and worth_parallel(path)
    with fewer_collections():
        stats = (_feed_parallel(analyzer, path, progress) if parallel
                 else _feed_serial(analyzer, reader, progress))
    if progress is not None:
        progress(stats.bytes)
    return analyzer.finish(stats.packets, stats.bytes, stats.duration, _stats_dict(stats))


def _feed_serial(analyzer: Analyzer, reader, progress: Callable[[int], None] | None) -> CaptureStats:
    feed = analyzer.feed
    n = 0
    for item in reader:
        feed(item)
        n += 1
        if progress is not None and not n & 0xFFF:
            progress(reader.stats.bytes)
    return reader.stats


def _feed_parallel(analyzer: Analyzer, path: Path, progress: Callable[[int], None] | None) -> CaptureStats:
    feed = analyzer.feed
    for entry in checked_items(path, progress):
        if isinstance(entry, CaptureStats):
            return entry
        feed(*entry)
    raise AssertionError("checked_items ended without the capture's stats")


def _stats_dict(stats: object) -> dict[str, object]:
    keys = ("packets", "bytes", "non_ip", "ip_fragments", "ip_fragments_reassembled",
            "udp_datagrams", "tcp_segments", "tcp_streams", "tcp_retransmissions",
            "tcp_messages", "sctp_messages", "ws_messages", "problems")
    return {k: getattr(stats, k) for k in keys if hasattr(stats, k)}
