"""The analyzer's report of a capture (``qa.analysis.engine.Report``) as stable JSON and
as rich tables. It lives with the reports, not the protocol code: the analyzer judges, the
report layer presents.

JSON of ``voipqa pcap check --json`` (one object per file, one per line; documented in
``docs/pcap-json.md``; keys are only ever added, never renamed)::

    {"schema": 1, "file": str, "packets": int, "bytes": int, "duration_s": float,
     "sip_messages": int, "calls": int, "dialogs": int,
     "errors": int, "warnings": int, "infos": int,
     "findings": [{"frame": int|null, "time": float|null, "call_id": str|null,
                   "severity": "error"|"warning"|"info", "rule": str, "reason": str,
                   "offset": int|null}],
     "findings_suppressed": {rule: int},
     "rules": {rule: int},
     "error_responses": {"METHOD CODE": int},
     "retransmissions": int,
     "rtp": {"packets": int, "streams": int, "rtcp": int, "unmatched": int},
     "capture": {...reader counters...}}

JSON of ``voipqa pcap calls --json``: ``{"schema": 1, "file": str, "calls": [call...]}``
with each call as :func:`call_json` documents.
"""

from __future__ import annotations

from dataclasses import asdict
from datetime import datetime, timezone

from rich.table import Table

from qa.analysis.calls import CallSummary
from qa.analysis.engine import Report

__all__ = ["SCHEMA", "clock", "check_json", "call_json", "calls_json", "findings_table", "summary_table",
           "calls_table"]

SCHEMA = 1
_STYLE = {"error": "bold red", "warning": "yellow", "info": "dim"}


def check_json(report: Report) -> dict[str, object]:
    """The ``pcap check --json`` object for one file."""
    sev = report.severity_counts
    stats = report.stats
    return {
        "schema": SCHEMA, "file": report.file, "packets": report.packets, "bytes": report.bytes,
        "duration_s": report.duration_s, "sip_messages": report.sip_messages,
        "calls": report.calls, "dialogs": report.dialogs,
        "errors": sev.get("error", 0), "warnings": sev.get("warning", 0), "infos": sev.get("info", 0),
        "findings": [f.to_json() for f in report.findings],
        "findings_suppressed": dict(report.suppressed),
        "rules": dict(report.rule_counts),
        "error_responses": stats.get("error_responses", {}),
        "retransmissions": stats.get("retransmissions", 0),
        "rtp": stats.get("rtp", {}),
        "capture": stats.get("capture", {}),
    }


def call_json(call: CallSummary) -> dict[str, object]:
    """One call: ``call_id, kind, first_frame, start, end, duration_s, from, to, caller,
    callee, final_code, final_reason, answered, pdd_ms, setup_ms, answer_frame, ended_by,
    bye_from, messages, retransmissions, error_responses, offered_codecs, answered_codec,
    negotiated_payload_types, dtmf_rtp, dtmf_info, streams[{src, dst, ssrc, direction,
    codec, payload_types, unexpected_payload_types, packets, expected, lost, loss_percent,
    sequence_errors, jitter_ms, max_jitter_ms, mos, dtmf, first_time, last_time,
    early_payload_types}], findings[...]``. ``answer_frame`` is the first 2xx to the
    INVITE; ``early_payload_types`` counts a stream's packets before it (early media)."""
    return {
        "call_id": call.call_id, "kind": call.kind, "first_frame": call.first_frame,
        "start": call.start, "end": call.end, "duration_s": call.duration_s,
        "from": call.from_uri, "to": call.to_uri, "caller": call.caller, "callee": call.callee,
        "final_code": call.final_code, "final_reason": call.final_reason,
        "answered": call.answered, "pdd_ms": call.pdd_ms, "setup_ms": call.setup_ms,
        "answer_frame": call.answer_frame, "ended_by": call.ended_by, "bye_from": call.bye_from, "messages": call.messages,
        "retransmissions": call.retransmissions, "error_responses": dict(call.error_responses),
        "offered_codecs": list(call.offered_codecs), "answered_codec": call.answered_codec,
        "negotiated_payload_types": list(call.negotiated_payload_types),
        "dtmf_rtp": call.dtmf_rtp, "dtmf_info": call.dtmf_info,
        "streams": [{k: (dict(v) if isinstance(v, dict) else v) for k, v in asdict(s).items()}
                    for s in call.streams],
        "findings": [f.to_json() for f in call.findings],
    }


def calls_json(file: str, calls: list[CallSummary]) -> dict[str, object]:
    return {"schema": SCHEMA, "file": file, "calls": [call_json(c) for c in calls]}


def clock(t: float | None) -> str:
    """Capture time as ``HH:MM:SS.mmm`` (UTC)."""
    if t is None:
        return ""
    return datetime.fromtimestamp(t, timezone.utc).strftime("%H:%M:%S.%f")[:-3]


def summary_table(report: Report) -> Table:
    """Counters of one capture."""
    table = Table(title=report.file, show_header=False, title_justify="left")
    table.add_column("what", style="bold")
    table.add_column("value")
    sev = report.severity_counts
    stats = report.stats
    rtp = stats.get("rtp", {})
    rows = [
        ("packets", f"{report.packets:,} ({report.duration_s:.1f} s)"),
        ("SIP messages", f"{report.sip_messages:,}"),
        ("calls / Call-IDs", f"{report.calls:,} / {report.dialogs:,}"),
        ("retransmissions", f"{stats.get('retransmissions', 0):,}"),
        ("RTP", f"{rtp.get('packets', 0):,} packets in {rtp.get('streams', 0)} streams"),
        ("findings", f"{sev.get('error', 0)} errors, {sev.get('warning', 0)} warnings, "
                     f"{sev.get('info', 0)} info"),
    ]
    responses = stats.get("error_responses") or {}
    if responses:
        rows.append(("error responses", ", ".join(f"{k} x{v}" for k, v in responses.items())))
    for what, value in rows:
        table.add_row(what, value)
    return table


def findings_table(report: Report, limit: int = 50) -> Table:
    """The first ``limit`` findings, most severe first."""
    order = {"error": 0, "warning": 1, "info": 2}
    rows = sorted(report.findings, key=lambda f: (order.get(f.severity, 3), f.frame or 0))
    table = Table(title=f"findings ({len(report.findings)} shown of "
                        f"{sum(report.rule_counts.values())})", title_justify="left")
    for col in ("frame", "time", "severity", "rule", "Call-ID", "reason"):
        table.add_column(col, overflow="fold")
    for f in rows[:limit]:
        table.add_row(str(f.frame or ""), clock(f.time), f"[{_STYLE.get(f.severity, '')}]{f.severity}",
                      f.rule, f.call_id or "", f.reason)
    return table


def calls_table(calls: list[CallSummary]) -> Table:
    """One row per call (``pcap calls``)."""
    table = Table(title="calls", title_justify="left")
    for col in ("start", "Call-ID", "kind", "final", "PDD ms", "setup ms", "dur s", "ended",
                "codec", "RTP fwd/back", "loss %", "jitter ms", "MOS", "DTMF", "findings"):
        table.add_column(col, overflow="fold")
    for c in calls:
        loss = max((s.loss_percent for s in c.streams), default=None)
        jitter = max((s.jitter_ms for s in c.streams), default=None)
        mos = min((s.mos for s in c.streams if s.mos is not None), default=None)
        table.add_row(
            clock(c.start), c.call_id, c.kind, f"{c.final_code or ''} {c.final_reason or ''}".strip(),
            _num(c.pdd_ms), _num(c.setup_ms), f"{c.duration_s:.1f}", c.ended_by,
            c.answered_codec or "", f"{c.media_packets('forward')}/{c.media_packets('backward')}",
            _num(loss, 2), _num(jitter, 2), _num(mos, 2), (c.dtmf_rtp + c.dtmf_info) or "",
            ", ".join(sorted({f.rule for f in c.findings})))
    return table


def _num(value: float | None, digits: int = 0) -> str:
    return "" if value is None else f"{value:.{digits}f}"
