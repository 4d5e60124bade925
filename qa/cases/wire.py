"""The fourth witness: what crossed the wire, joined into the call records after a run.

The run's capture is analysed in one pass (``qa.analysis``); each call record gets a
``pcap`` object (DESIGN §6: malformed messages, retransmissions, RTP loss/jitter/MOS,
digits seen, findings). The wire judges, it does not only report. A call fails ("wire:
…") on:

* malformed SIP/SDP, or a response whose CSeq is not its request's (``call.cseq-mismatch``);
* RTP on a payload type the two sides did not both list (RFC 3264 §6.1);
* when the case expects media both ways (the customer sends RTP, or ``media=both``):
  one-way audio, or no RTP at all on an answered call;
* when it expects early media (``media=early``, RFC 3960): no RTP from the carrier on a
  negotiated payload type before the first 200 OK on the wire.

What the case expected is written by the case runner into ``pcap.expect`` (``media``:
``both``/``early``/``any``/null, ``customer_rtp``) so a run can be judged again offline;
``any`` opts out of media judging, for cases whose point is the absence of media. Other
findings (loss, jitter, one-way audio of a customer that sends no RTP) are reported, not
judged. Every failed call gets a ladder diagram, linked from the call record and from its
case in the Robot report.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from qa.analysis.calls import CallSummary
from qa.analysis.findings import is_malformed
from qa.analysis.rtp import StreamSummary
from qa.cases.checks import failure_message, reasons_of
from qa.record import CallRecord, read_records, test_id

LADDER_DIR = "ladders"


@dataclass
class WireResult:
    """What the wire witness did to a run's records."""

    calls_seen: int = 0
    # keyed by report_key(record): the Robot test that placed the call
    failed_by_wire: list[str] = field(default_factory=list)
    reasons: dict[str, list[str]] = field(default_factory=dict)  # the wire's reasons
    ladders: dict[str, Path] = field(default_factory=dict)  # the ladder of a failed call
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


def report_key(record: CallRecord) -> str:
    """Which Robot test a record's wire verdict goes to: the test that placed the call
    (``record.test``), else (a record written outside Robot) its case name."""
    return record.test or record.case


def key_name(key: str) -> str:
    """A report key as a reader knows it: the test's name, without its suite file."""
    return key.rpartition("::")[2]


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text).strip("_")[:80] or "call"


def join_wire(captures: list[Path], calls_file: Path, output: Path) -> WireResult:
    """Analyse the run's capture files and rewrite calls.jsonl with the wire witness."""
    from qa.analysis.engine import analyze
    from qa.report.ladder import render_ladder

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
        if summary is None and record.call_id and captures and not result.problem:
            # the capture ran and the call is not in it: a witness missing is a failure, not a pass
            _missing(record, result)
        if summary is not None:
            _witness(record, summary, result)
            if record.verdict == "fail":
                path = output / LADDER_DIR / f"{_slug(record.case)}-{_slug(record.call_id or '')}.html"
                path.parent.mkdir(exist_ok=True)
                path.write_text(render_ladder(summary, carrier=(record.carrier or {}).get("carrier"),
                                              reasons=record.reasons))
                record.pcap["ladder"] = str(path.relative_to(output))
                result.ladders[report_key(record)] = path
    _rewrite(calls_file, records)
    return result


def _missing(record: CallRecord, result: WireResult) -> None:
    reason = "the call is not in the run's capture: the wire witness cannot judge it"
    record.fail("wire", reason)
    _failed(record, [reason], result)


def _witness(record: CallRecord, summary: CallSummary, result: WireResult) -> None:
    expect = (record.pcap or {}).get("expect") or {}
    record.pcap = pcap_witness(summary) | {"expect": expect}
    reasons = wire_verdict(summary, expect)
    for reason in reasons:
        record.fail("wire", reason)
    if reasons:
        _failed(record, reasons, result)


def _failed(record: CallRecord, reasons: list[str], result: WireResult) -> None:
    key = report_key(record)
    if key not in result.failed_by_wire:
        result.failed_by_wire.append(key)
    result.reasons.setdefault(key, []).extend(f"wire: {r}" for r in reasons)


# --- the wire's verdict ------------------------------------------------------------------

#: How many malformed messages of one call are named (the rest are in ``pcap.malformed``).
MALFORMED_SHOWN = 3
#: A stream shorter than this (0.5 s at 20 ms) is not judged on loss, jitter or MOS.
MIN_JUDGED_PACKETS = 25


def wire_verdict(summary: CallSummary, expect: dict) -> list[str]:
    """Why the wire fails this call (empty: it does not); ``expect`` is the record's
    ``pcap.expect``. Each reason is one sentence without the "wire: " prefix."""
    reasons = [f"frame {f.frame}: {f.rule}: {f.reason}" for f in summary.findings if is_malformed(f)]
    reasons = reasons[:MALFORMED_SHOWN]
    reasons += [f"frame {f.frame}: {f.reason}" for f in summary.findings if f.rule == "call.cseq-mismatch"]
    media = expect.get("media")
    if summary.kind != "call" or not summary.answered or media == "any":
        return reasons
    reasons += payload_type_reasons(summary)
    if media == "both" or (media == "early" and expect.get("customer_rtp")):
        reasons += both_ways_reasons(summary)
    if expect.get("quality"):
        reasons += quality_reasons(summary, expect["quality"])
    if media == "early":
        reasons += early_media_reasons(summary)
    return reasons


def hop_packets(streams: list[StreamSummary], direction: str) -> int:
    """RTP packets ``direction`` (forward: customer→carrier) on the hop that carried most:
    a platform that relays media (rtpengine) puts each packet on the wire twice."""
    per_hop: dict[tuple[str, str], int] = {}
    for st in streams:
        if st.direction == direction:
            per_hop[(st.src, st.dst)] = per_hop.get((st.src, st.dst), 0) + st.packets
    return max(per_hop.values(), default=0)


def both_ways_reasons(summary: CallSummary) -> list[str]:
    """An answered call with media expected: RTP each way (else one-way audio, or none)."""
    to_carrier, to_customer = hop_packets(summary.streams, "forward"), hop_packets(summary.streams, "backward")
    if to_carrier and to_customer:
        return []
    if not (to_carrier or to_customer):
        return ["no media: answered call, 0 RTP packets either way"]
    return [f"one-way audio: carrier→customer {to_customer} RTP packets, customer→carrier {to_carrier}"]


def quality_reasons(summary: CallSummary, quality: dict) -> list[str]:
    """Loss, jitter and MOS of each audio stream against the case's bounds (``pcap.expect
    .quality``: the environment's thresholds). Streams too short to judge (fewer packets
    than a MOS needs) are left alone, as are event-only streams."""
    reasons = []
    for st in summary.streams:
        if st.codec is None or st.packets < MIN_JUDGED_PACKETS:
            continue
        side = f"RTP {_side(st.direction)} {st.src}→{st.dst}"
        if "loss_pct_max" in quality and st.loss_percent > quality["loss_pct_max"]:
            reasons.append(f"{side}: {st.loss_percent:.1f}% lost ({st.lost} of {st.expected}), "
                           f"at most {quality['loss_pct_max']:g}% allowed")
        if "jitter_ms_max" in quality and st.jitter_ms > quality["jitter_ms_max"]:
            reasons.append(f"{side}: jitter {st.jitter_ms:.1f} ms, at most {quality['jitter_ms_max']:g} ms allowed")
        if "mos_min" in quality and st.mos is not None and st.mos < quality["mos_min"]:
            reasons.append(f"{side}: MOS {st.mos:.2f}, at least {quality['mos_min']:g} expected")
    return reasons


def payload_type_reasons(summary: CallSummary) -> list[str]:
    """RTP on a payload type the two sides did not both list in their SDP: one reason per
    direction, counting the hop that carried most (a relaying platform repeats the fault)."""
    negotiated = ", ".join(map(str, summary.negotiated_payload_types)) or "none"
    wrong: dict[str, dict[int, int]] = {}
    for st in summary.streams:
        counts = wrong.setdefault(st.direction, {})
        for pt in st.unexpected_payload_types:
            counts[pt] = max(counts.get(pt, 0), st.payload_types.get(pt, 0))
    return [f"RTP {_side(direction)} on payload type "
            f"{', '.join(f'{pt} ({n} packets)' for pt, n in sorted(counts.items()))}, negotiated {negotiated}"
            for direction, counts in sorted(wrong.items()) if counts]


def early_media_reasons(summary: CallSummary) -> list[str]:
    """Early media (RFC 3960): RTP towards the customer on a negotiated payload type,
    sent before the first 200 OK on the wire."""
    negotiated = set(summary.negotiated_payload_types)
    early = [(pt, n) for st in summary.streams if st.direction == "backward"
             for pt, n in st.early_payload_types.items()]
    good = sum(n for pt, n in early if pt in negotiated)
    if good:
        return []
    answer = f"the 200 OK (frame {summary.answer_frame})" if summary.answer_frame else "the 200 OK"
    other = sorted({pt for pt, _ in early})
    if other:
        return [f"no early media: RTP carrier→customer before {answer} only on payload type "
                f"{', '.join(map(str, other))}, negotiated {', '.join(map(str, sorted(negotiated))) or 'none'}"]
    return [f"no early media: 0 RTP packets carrier→customer before {answer}"]


def _side(direction: str) -> str:
    return "customer→carrier" if direction == "forward" else "carrier→customer"


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
    """Put the wire witness into the Robot reports: capture metadata on the run, the wire's
    reasons on each case it failed (after those the case found itself), a ladder link on
    each failed case."""
    from robot.api import ExecutionResult
    from robot.reporting import ResultWriter

    run = ExecutionResult(str(output_xml))
    run.suite.metadata["Capture"] = capture
    for test in run.suite.all_tests:
        key = test_id(test.source, test.name)
        if key not in result.reasons and key not in result.ladders:
            key = test.name                  # records written without their Robot test
        wire = result.reasons.get(key)
        if wire:
            test.message = wire_message(test.message if test.status == "FAIL" else "", wire)
            test.status = "FAIL"
        ladder = result.ladders.get(key)
        if ladder is None:
            continue
        link = f'<a href="{ladder.relative_to(output)}">ladder of the call</a>'
        test.message = f"*HTML* {_escape(test.message)}<br>{link}"
    ResultWriter(run).write_results(output=str(output_xml), log=str(output / "log.html"),
                                    report=str(output / "report.html"), xunit=str(output / "xunit.xml"))


def wire_message(message: str, wire: list[str]) -> str:
    """A case's failure message with the wire's reasons added: every failing check, the
    first line cut only between checks (:func:`qa.cases.checks.failure_message`)."""
    before, context = reasons_of(message)
    return "\n".join([failure_message(before + [r for r in wire if r not in before])] + context)


def _escape(text: str) -> str:
    if text.startswith("*HTML*"):
        return text[len("*HTML*"):].strip()
    escaped = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return escaped.replace("\n", "<br>\n")  # one check per line in the report, too
