"""A self-contained HTML ladder (sequence) diagram of one call, the way sngrep draws it.

One column per endpoint (``ip:port``) in order of appearance; one row per SIP message
with an arrow from sender to receiver labelled with the method or status, the CSeq, the
capture time and the delta to the previous message. The SDP a message carries and the
message itself sit beside its arrow in collapsible ``<details>``; findings on that frame
are printed on the arrow's row in red (errors) or amber (warnings); findings about the
call as a whole (call rules, RTP streams) are listed above the diagram. No scripts, no
external assets: inline CSS and SVG only.
"""

from __future__ import annotations

from html import escape

from qa.analysis.calls import CallSummary, LadderEvent
from qa.analysis.findings import Finding
from qa.report.pcap import clock

__all__ = ["endpoints", "render_ladder", "roles"]

_COL = 190    # px between endpoint columns
_ROW = 34     # px per arrow row
_PAD = 95     # px left margin to the first column

_CSS = """
body{font-family:system-ui,sans-serif;margin:1.5em;color:#222}
h1{font-size:1.2em} table.ladder{border-collapse:collapse}
table.ladder td{vertical-align:top;padding:0 .4em;border-bottom:1px solid #eee}
td.t{font:12px monospace;white-space:nowrap;color:#555}
td.n{font-size:12px;max-width:46em} pre{font-size:11px;background:#f6f6f6;padding:.4em;
white-space:pre-wrap;margin:.2em 0} .error{color:#b00020;font-weight:bold}
.warning{color:#a06000} .info{color:#666} svg text{font:12px monospace}
table.meta td{padding:0 1em 0 0;font-size:13px}
"""


def endpoints(events: list[LadderEvent]) -> list[str]:
    """Endpoints in order of first appearance (sender before receiver)."""
    seen: dict[str, None] = {}
    for ev in events:
        seen.setdefault(ev.src, None)
        seen.setdefault(ev.dst, None)
    return list(seen)


def roles(events: list[LadderEvent], carrier: str | None = None) -> dict[str, str]:
    """Each endpoint's role in a call through a proxy (RFC 3261 §16): who sent the first
    INVITE is the customer, where it went the platform, and where the platform sent an
    INVITE a carrier — ``carrier`` (the one that answered, from its own record) names the
    last of them, the others are "carrier 1", "carrier 2"… in order (failover)."""
    invites = [e for e in events if e.is_request and e.label.startswith("INVITE") and not e.retransmission]
    if not invites:
        return {}
    customer, platform = invites[0].src, invites[0].dst
    onward = list(dict.fromkeys(e.dst for e in invites if e.src == platform and e.dst != customer))
    out = {customer: "customer", platform: "platform"}
    for i, dst in enumerate(onward, 1):
        last = i == len(onward)
        out[dst] = carrier if carrier and last else ("carrier" if len(onward) == 1 else f"carrier {i}")
    return out


def _x(index: int) -> int:
    return _PAD + index * _COL


def _lifelines(n: int, height: int) -> str:
    return "".join(f'<line x1="{_x(i)}" y1="0" x2="{_x(i)}" y2="{height}" stroke="#bbb"/>'
                   for i in range(n))


def _header(names: list[str], named: dict[str, str]) -> str:
    width = _x(len(names) - 1) + _PAD
    texts = "".join(f'<text x="{_x(i)}" y="14" text-anchor="middle" font-weight="bold">'
                    f'{escape(named.get(name, ""))}</text>'
                    f'<text x="{_x(i)}" y="30" text-anchor="middle">{escape(name)}</text>'
                    for i, name in enumerate(names))
    return f'<svg width="{width}" height="38">{texts}</svg>'


def _arrow(ev: LadderEvent, cols: dict[str, int], n: int) -> str:
    a, b = cols[ev.src], cols[ev.dst]
    x1, x2 = _x(a), _x(b)
    y = _ROW - 8
    width = _x(n - 1) + _PAD
    colour = "#1a5fb4" if ev.is_request else "#26a269"
    if any(f.severity == "error" for f in ev.findings):
        colour = "#b00020"
    dash = ' stroke-dasharray="4 3"' if ev.retransmission else ""
    head = x2 - 8 if x2 > x1 else x2 + 8
    label = escape(ev.label + ("  (retransmission)" if ev.retransmission else ""))
    if a == b:  # message to itself: a small loop
        path = (f'<path d="M{x1},{y - 8} h30 v10 h-30" fill="none" stroke="{colour}"{dash}/>')
        text_x = x1 + 36
        return (f'<svg width="{width}" height="{_ROW}">{_lifelines(n, _ROW)}{path}'
                f'<text x="{text_x}" y="{y}" fill="{colour}">{label}</text></svg>')
    mid = (x1 + x2) / 2
    return (f'<svg width="{width}" height="{_ROW}">{_lifelines(n, _ROW)}'
            f'<line x1="{x1}" y1="{y}" x2="{x2}" y2="{y}" stroke="{colour}" stroke-width="2"{dash}/>'
            f'<polygon points="{x2},{y} {head},{y - 5} {head},{y + 5}" fill="{colour}"/>'
            f'<text x="{mid}" y="{y - 6}" text-anchor="middle" fill="{colour}">{label}</text></svg>')


def _finding_html(f: Finding) -> str:
    where = f" at byte {f.offset}" if f.offset is not None else ""
    return (f'<div class="{escape(f.severity)}">{escape(f.severity)} {escape(f.rule)}{where}: '
            f'{escape(f.reason)}</div>')


def _notes(ev: LadderEvent) -> str:
    parts = [_finding_html(f) for f in ev.findings]
    if ev.sdp:
        parts.append(f"<details><summary>SDP</summary><pre>{escape(ev.sdp)}</pre></details>")
    if ev.message:
        parts.append(f"<details><summary>message</summary><pre>{escape(ev.message)}</pre></details>")
    return "".join(parts)


def _rows(events: list[LadderEvent], cols: dict[str, int]) -> str:
    out = []
    previous = events[0].time if events else 0.0
    for ev in events:
        delta = (ev.time - previous) * 1000
        previous = ev.time
        out.append(f'<tr><td class="t">#{ev.frame}<br>{clock(ev.time)}<br>+{delta:.1f} ms '
                   f'{escape(ev.transport.upper())}<br>{escape(ev.cseq)}</td>'
                   f"<td>{_arrow(ev, cols, len(cols))}</td><td class=\"n\">{_notes(ev)}</td></tr>")
    return "".join(out)


def _v(value: object, unit: str = "") -> str:
    """A figure for a person: ``-`` where there is none (never "None")."""
    return "-" if value is None or value == "" else f"{value}{unit}"


def _meta(call: CallSummary) -> str:
    rows = [("Call-ID", call.call_id), ("final", f"{_v(call.final_code)} {call.final_reason or ''}".strip()),
            ("PDD / setup", f"{_v(call.pdd_ms, ' ms')} / {_v(call.setup_ms, ' ms')}"),
            ("ended by", f"{_v(call.ended_by)} ({call.bye_from or '-'})"),
            ("messages", f"{call.messages} ({call.retransmissions} retransmissions)"),
            ("codecs", f"offered {', '.join(call.offered_codecs) or '-'}; answered {_v(call.answered_codec)}"),
            ("DTMF", f"RTP {call.dtmf_rtp or '-'}; INFO {call.dtmf_info or '-'}")]
    for s in call.streams:
        rows.append((f"RTP {s.direction}", f"{s.src} → {s.dst} {_v(s.codec)} {s.packets} pkts, "
                     f"lost {s.lost} ({_v(s.loss_percent, ' %')}), jitter {_v(s.jitter_ms, ' ms')}, "
                     f"MOS {_v(s.mos)}"))
    body = "".join(f"<tr><td><b>{escape(k)}</b></td><td>{escape(str(v))}</td></tr>" for k, v in rows)
    return f'<table class="meta">{body}</table>'


def render_ladder(call: CallSummary, *, carrier: str | None = None, reasons: list[str] | None = None) -> str:
    """The whole HTML document for ``call``: why the case failed (``reasons``, the call
    record's), the call's figures, and the ladder with columns named by role."""
    events = call.events
    names = endpoints(events)
    named = roles(events, carrier)
    cols = {name: i for i, name in enumerate(names)}
    frames = {e.frame for e in events}
    loose = [f for f in call.findings if f.frame not in frames or f.rule.startswith(("call.", "rtp."))]
    dropped = (f"<p>{call.events_dropped} more messages not drawn.</p>" if call.events_dropped else "")
    why = "".join(f'<div class="error">{escape(r)}</div>' for r in reasons or [])
    return (f'<!DOCTYPE html><html><head><meta charset="utf-8"><title>{escape(call.call_id)}</title>'
            f"<style>{_CSS}</style></head><body><h1>Call {escape(call.call_id)}</h1>{why}{_meta(call)}"
            + "".join(_finding_html(f) for f in loose)
            + f'<table class="ladder"><tr><td></td><td>{_header(names, named) if names else ""}</td><td></td></tr>'
            + _rows(events, cols) + f"</table>{dropped}</body></html>\n")
