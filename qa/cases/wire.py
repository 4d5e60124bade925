"""The fourth witness: what crossed the wire, joined into the call records after a run.

The run's capture is analysed in one pass (``qa.analysis``); each call record gets a
``pcap`` object (DESIGN §6: malformed messages, retransmissions, RTP loss/jitter/MOS,
digits seen, findings). Malformed SIP/SDP on a call's Call-ID fails that call ("wire:
…"); other wire findings (one-way audio of a customer that sends no RTP, say) are
reported, not judged, since test customers often send no media. Every failed call gets
a ladder diagram, linked from the call record and from its case in the Robot report.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from qa.analysis.calls import CallSummary
from qa.analysis.findings import is_malformed
from qa.cases.record import CallRecord, read_records

LADDER_DIR = "ladders"


@dataclass
class WireResult:
    """What the wire witness did to a run's records."""

    calls_seen: int = 0
    failed_by_wire: list[str] = field(default_factory=list)
    ladders: dict[str, Path] = field(default_factory=dict)  # case -> ladder file
    problem: str | None = None


def pcap_witness(summary: CallSummary) -> dict:
    """The record's ``pcap`` object for one call's summary."""
    streams = summary.streams
    return {
        "malformed": [f"frame {f.frame}: {f.rule}: {f.reason}" for f in summary.findings if is_malformed(f)],
        "retransmissions": summary.retransmissions,
        "final_code": summary.final_code,
        "messages": summary.messages,
        "rtp": {
            "streams": len(streams),
            "lost": sum(s.lost for s in streams),
            "jitter_ms": max((s.jitter_ms for s in streams), default=None),
            "mos": min((s.mos for s in streams if s.mos is not None), default=None),
        },
        "dtmf": summary.dtmf_rtp or summary.dtmf_info or "",
        "findings": [f"{f.severity} {f.rule}: {f.reason}" for f in summary.findings][:20],
    }


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text).strip("_")[:80] or "call"


def join_wire(captures: list[Path], calls_file: Path, output: Path) -> WireResult:
    """Analyse the run's capture files and rewrite calls.jsonl with the wire witness."""
    from qa.analysis.engine import analyze
    from qa.analysis.ladder import render_ladder

    result = WireResult()
    if not calls_file.is_file():
        return result
    records = list(read_records(calls_file))
    wanted = {r.call_id for r in records if r.call_id}
    summaries: dict[str, CallSummary] = {}

    def keep(summary: CallSummary) -> None:
        if summary.call_id in wanted:
            summaries[summary.call_id] = summary

    for capture in captures:
        try:
            analyze(capture, on_call=keep)
        except Exception as exc:  # a capture cut short must not lose the run's records
            result.problem = f"capture {capture.name} not analysed: {exc}"
    result.calls_seen = len(summaries)
    for record in records:
        summary = summaries.get(record.call_id or "")
        if summary is not None:
            _witness(record, summary, result)
            if record.verdict == "fail":
                path = output / LADDER_DIR / f"{_slug(record.case)}-{_slug(record.call_id or '')}.html"
                path.parent.mkdir(exist_ok=True)
                path.write_text(render_ladder(summary))
                record.pcap["ladder"] = str(path.relative_to(output))
                result.ladders[record.case] = path
    _rewrite(calls_file, records)
    return result


def _witness(record: CallRecord, summary: CallSummary, result: WireResult) -> None:
    record.pcap = pcap_witness(summary)
    for line in record.pcap["malformed"][:3]:
        record.fail("wire", line)
    if record.pcap["malformed"]:
        result.failed_by_wire.append(record.case)


def _rewrite(calls_file: Path, records: list[CallRecord]) -> None:
    """Replace calls.jsonl atomically: a crash mid-write keeps the old file."""
    tmp = calls_file.with_suffix(".jsonl.tmp")
    with open(tmp, "w", encoding="utf-8") as fh:
        for record in records:
            fh.write(record.to_json() + "\n")
        fh.flush()
        os.fsync(fh.fileno())
    tmp.replace(calls_file)


def annotate_report(output_xml: Path, result: WireResult, output: Path, *, capture: str) -> None:
    """Put the wire witness into the Robot reports: capture metadata on the run, a ladder
    link on each failed case, and a failure for a case whose call was malformed on the wire."""
    from robot.api import ExecutionResult
    from robot.reporting import ResultWriter

    run = ExecutionResult(str(output_xml))
    run.suite.metadata["Capture"] = capture
    for test in run.suite.all_tests:
        ladder = result.ladders.get(test.name)
        if ladder is None:
            continue
        link = f'<a href="{ladder.relative_to(output)}">ladder of the call</a>'
        if test.name in result.failed_by_wire and test.status == "PASS":
            test.status = "FAIL"
            test.message = "wire: malformed SIP/SDP on this call"
        test.message = f"*HTML* {_escape(test.message)}<br>{link}"
    ResultWriter(run).write_results(output=str(output_xml), log=str(output / "log.html"),
                                    report=str(output / "report.html"), xunit=str(output / "xunit.xml"))


def _escape(text: str) -> str:
    if text.startswith("*HTML*"):
        return text[len("*HTML*"):].strip()
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
