"""Second opinion: where Wireshark's dissectors and voipqa disagree on malformed SIP.

Runs ``tshark -r FILE -Y "sip && (_ws.malformed || _ws.expert.severity >= warning)"``
with ``-T fields`` (tshark adds some expert items only when it builds the full tree,
corpus SOURCE.txt) and collects, per frame, the expert messages of severity warning or
error, leaving out the TCP sequence and checksum groups (a retransmitted segment is not
a malformed SIP message). Ports where voipqa found SIP outside 5060/5061 are decoded as
SIP too (``-d udp.port==P,sip``), so both look at the same frames. tshark is never the
hot path: this is an optional cross-check.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from qa.analysis.engine import Report
from qa.analysis.findings import is_malformed
from qa.errors import VoipqaError
from qa.tools import require_tool

__all__ = ["TsharkOpinion", "Comparison", "tshark_argv", "run_tshark", "compare", "second_opinion"]

#: Expert severities (epan/proto.h PI_WARN, PI_ERROR).
_WARN = 0x00600000
#: Expert groups that say nothing about SIP syntax: PI_CHECKSUM, PI_SEQUENCE.
_IGNORED_GROUPS = frozenset({0x01000000, 0x02000000})
_STANDARD_PORTS = frozenset({5060, 5061})
_MAX_DECODE_AS = 32


@dataclass
class TsharkOpinion:
    """Frames tshark flags on SIP, with its messages."""

    frames: dict[int, list[str]] = field(default_factory=dict)
    argv: list[str] = field(default_factory=list)


@dataclass
class Comparison:
    """Frames flagged by voipqa only, by tshark only, and by both."""

    file: str
    only_voipqa: dict[int, list[str]]
    only_tshark: dict[int, list[str]]
    both: dict[int, tuple[list[str], list[str]]]

    def to_json(self) -> dict[str, object]:
        return {"file": self.file,
                "only_voipqa": {str(k): v for k, v in sorted(self.only_voipqa.items())},
                "only_tshark": {str(k): v for k, v in sorted(self.only_tshark.items())},
                "both": {str(k): {"voipqa": v[0], "tshark": v[1]} for k, v in sorted(self.both.items())}}


def tshark_argv(path: str | Path, sip_ports: list[int] = (), *, disable_sdp: bool = False) -> list[str]:
    """The tshark command line (an argv list, never a shell string)."""
    argv = [require_tool("tshark"), "-n", "-r", str(path)]
    for port in sorted(set(sip_ports) - _STANDARD_PORTS)[:_MAX_DECODE_AS]:
        argv += ["-d", f"udp.port=={port},sip", "-d", f"tcp.port=={port},sip"]
    if disable_sdp:
        argv += ["--disable-protocol", "sdp"]
    argv += ["-Y", f"sip && (_ws.malformed || _ws.expert.severity >= {_WARN})", "-T", "fields",
             "-E", "occurrence=a", "-E", "aggregator=\x1f", "-E", "separator=\t",
             "-e", "frame.number", "-e", "_ws.expert.severity", "-e", "_ws.expert.group",
             "-e", "_ws.expert.message", "-e", "_ws.malformed"]
    return argv


def parse_fields(text: str) -> dict[int, list[str]]:
    """tshark's fields output -> frame -> expert messages that matter."""
    frames: dict[int, list[str]] = {}
    for line in text.splitlines():
        cols = line.split("\t")
        if not cols or not cols[0].isdigit():
            continue
        cols += [""] * (5 - len(cols))
        sevs, groups, msgs = (c.split("\x1f") for c in cols[1:4])
        kept = [m for s, g, m in zip(sevs, groups, msgs)
                if s.isdigit() and int(s) >= _WARN and not (g.isdigit() and int(g) in _IGNORED_GROUPS)]
        if cols[4] and not kept:
            kept = ["Malformed Packet"]
        if kept:
            frames[int(cols[0])] = kept
    return frames


def run_tshark(path: str | Path, sip_ports: list[int] = (), *, timeout: float = 600,
               disable_sdp: bool = False) -> TsharkOpinion:
    """Run tshark on ``path``; ``VoipqaError`` if it fails or times out."""
    argv = tshark_argv(path, sip_ports, disable_sdp=disable_sdp)
    try:
        done = subprocess.run(argv, capture_output=True, text=True, errors="replace", timeout=timeout)
    except subprocess.TimeoutExpired as exc:
        raise VoipqaError(f"{path}: tshark took more than {timeout:.0f} s") from exc
    if done.returncode not in (0, 2):  # 2: tshark's "some packets were cut short" exit
        last = (done.stderr.strip().splitlines() or ["no output"])[-1]
        raise VoipqaError(f"{path}: tshark failed ({done.returncode}): {last}")
    return TsharkOpinion(parse_fields(done.stdout), argv)


def compare(report: Report, opinion: TsharkOpinion) -> Comparison:
    """Frame-by-frame comparison of voipqa's malformed findings with tshark's."""
    ours: dict[int, list[str]] = {}
    for f in report.findings:
        if f.frame is not None and is_malformed(f):
            ours.setdefault(f.frame, []).append(f"{f.rule}: {f.reason}")
    theirs = opinion.frames
    return Comparison(
        file=report.file,
        only_voipqa={k: v for k, v in ours.items() if k not in theirs},
        only_tshark={k: v for k, v in theirs.items() if k not in ours},
        both={k: (ours[k], theirs[k]) for k in ours.keys() & theirs.keys()})


def second_opinion(report: Report, *, timeout: float = 600) -> Comparison:
    """Run tshark on the report's file (decoding voipqa's SIP ports as SIP) and compare."""
    ports = [int(p) for p in report.stats.get("sip_ports", [])]  # type: ignore[union-attr]
    return compare(report, run_tshark(report.file, ports, timeout=timeout))
