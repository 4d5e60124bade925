"""Wireshark display filters over one call of a capture, through pyshark.

VoIP engineers think in display filters (``sip.Method == "INVITE" && sdp.media.format
contains "PCMA"``); voipqa's own analyzer is the fast path, and this module lets a test
reach Wireshark's full dissector tree where it wants it. Only the frames of the call are
dissected: voipqa's capture reader finds them in one pass (the SIP messages carrying its
Call-ID on every hop, and the RTP/RTCP to and from the addresses their SDP announced), they are copied into a small capture of their
own, and pyshark (tshark) reads that, so a 60-case run does not pay a full dissection of
the whole capture per assertion. Frame numbers are reported as they are in the original
file.

A display filter is checked by tshark itself before anything is dissected: a bad one is
:class:`BadFilter` with tshark's own reason in one line. A call the capture does not hold
is :class:`NoCallFrames` ("no frames for call ..."), never an empty, passing match.
"""

from __future__ import annotations

import subprocess
import tempfile
import time
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from qa.capture.pcapfile import FrameSource
from qa.capture.reader import CaptureReader
from qa.capture.model import Payload
from qa.capture.writer import write_pcapng
from qa.errors import BadInput, ParseError
from qa.sdp import SessionDescription
from qa.tools import require_tool

__all__ = ["BadFilter", "CallCapture", "LiveCapture", "Match", "NoCallFrames", "call_capture", "check_filter",
           "match", "whole_capture"]

#: how long tshark may take to judge a filter or dissect a call's frames
TSHARK_TIMEOUT_S = 60.0
#: media of a call still counts this long after its last SIP message (the last RTP after the BYE)
MEDIA_TAIL_S = 0.5


class BadFilter(BadInput):
    """A display filter tshark does not accept (exit 2 on the command line)."""


class NoCallFrames(BadInput):
    """The capture holds no frame of the call (exit 2: nothing to match against)."""


@dataclass(frozen=True)
class Match:
    """A frame the filter matched: its number in the original capture and the values of
    the fields asked for (every occurrence, in order; empty when the frame lacks one)."""

    frame: int
    fields: dict[str, list[str]] = field(default_factory=dict)

    def to_dict(self) -> dict[str, object]:
        return {"frame": self.frame, "fields": self.fields}


@dataclass
class CallCapture:
    """One call's frames copied out of a capture: ``path`` (pcapng) and, for each of its
    frames in order, the frame number in the original file. ``call_id`` None: the whole
    capture, as it is (``frames`` None: numbers unchanged)."""

    call_id: str | None
    source: Path
    path: Path
    frames: list[int] | None = None

    def original(self, number: int) -> int:
        """The original frame number of frame ``number`` (1-based) of this capture."""
        return number if self.frames is None else self.frames[number - 1]

    def describe(self) -> str:
        return f"call {self.call_id} ({len(self.frames or ())} frames)" if self.call_id else "the whole capture"


def whole_capture(path: str | Path) -> CallCapture:
    """The whole file as the scope of a filter (a bad or unreadable file: BadInput, exit 2)."""
    path = Path(path)
    FrameSource(path)  # checks the header: PcapError (one line naming the file) otherwise
    return CallCapture(None, path, path)


#: filters tshark accepted in this process: a suite asserts the same few over and over
_ACCEPTED: set[str] = set()


def check_filter(expression: str) -> None:
    """Raise :class:`BadFilter` when tshark does not accept ``expression`` (its reason, one line)."""
    if not expression.strip():
        raise BadFilter("display filter is empty")
    if expression in _ACCEPTED:
        return
    with tempfile.TemporaryDirectory(prefix="voipqa-dfilter-") as tmp:
        empty = Path(tmp) / "empty.pcapng"
        write_pcapng(empty, [])
        proc = subprocess.run([require_tool("tshark"), "-n", "-r", str(empty), "-Y", expression],
                              capture_output=True, text=True, timeout=TSHARK_TIMEOUT_S)
    if proc.returncode != 0:
        raise BadFilter(f"display filter {expression!r}: {_tshark_reason(proc.stderr)}")
    _ACCEPTED.add(expression)


def call_capture(path: str | Path, call_id: str, workdir: str | Path) -> CallCapture:
    """Copy the frames of ``call_id`` (its SIP messages on every hop and its RTP/RTCP) out of
    ``path`` into ``workdir``; :class:`NoCallFrames` when there are none."""
    path = Path(path)
    wanted = set(call_frames(CaptureReader(path), call_id))
    if not wanted:
        raise NoCallFrames(f"{path}: no frames for call {call_id!r}")
    out = Path(workdir) / f"call-{zlib.crc32(call_id.encode()):08x}.pcapng"
    return CallCapture(call_id, path, out, _copy(path, wanted, out))


def match(call: CallCapture, expression: str, fields: Iterable[str] = ()) -> list[Match]:
    """The call's frames that ``expression`` matches, with the values of ``fields``.

    tshark writes the matching frames' dissection trees (PDML) and pyshark turns each into
    its packet model (layers, fields by their Wireshark names). tshark runs as a plain
    child process rather than through pyshark's asyncio capture: that one needs a child
    watcher of the main thread and fails where tests run in a thread (pytest-xdist).
    """
    check_filter(expression)
    from pyshark.tshark.output_parser.tshark_xml import packet_from_xml_packet  # only when a filter runs

    names = list(fields)
    argv = [require_tool("tshark"), "-n", "-r", str(call.path), "-Y", expression, "-T", "pdml"]
    found: list[Match] = []
    with subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE) as proc:
        assert proc.stdout is not None and proc.stderr is not None
        for xml in _pdml_packets(proc.stdout):
            packet = packet_from_xml_packet(xml)
            found.append(Match(call.original(int(packet.number)), {n: _values(packet, n) for n in names}))
        stderr = proc.stderr.read().decode(errors="replace")
    if proc.returncode != 0:
        raise BadInput(f"tshark could not read {call.path}: {_tshark_reason(stderr)}")
    return found


def _pdml_packets(stream: Iterable[bytes]) -> Iterator[bytes]:
    """Each ``<packet>...</packet>`` of a PDML stream, as it comes."""
    current: list[bytes] | None = None
    for line in stream:
        stripped = line.strip()
        if stripped == b"<packet>":
            current = [line]
        elif current is not None:
            current.append(line)
            if stripped == b"</packet>":
                yield b"".join(current)
                current = None


def _tshark_reason(stderr: str) -> str:
    """tshark's own complaint, one line (its warning about running as root left out)."""
    lines = [ln.removeprefix("tshark:").strip() for ln in stderr.splitlines()
             if ln.strip() and "could be dangerous" not in ln]
    return lines[0] if lines else "exit status not 0"


def _values(packet: object, name: str) -> list[str]:
    """Every value of the field ``name`` (e.g. ``sip.Via.transport``) in the packet's layers."""
    out: list[str] = []
    for layer in getattr(packet, "layers", []):
        found = layer.get_field(name)
        if found is None:
            continue
        for item in getattr(found, "all_fields", [found]):
            out.append(str(getattr(item, "show", item)))
    return out


def call_frames(items: Iterable[object], call_id: str) -> list[int]:
    """Frame numbers of the call in one pass over the decoded payloads: the SIP messages
    with this Call-ID, and the UDP datagrams to or from an RTP/RTCP address their SDP
    announced (RFC 8866 c= and m=; RTCP on the port above, RFC 3550 §11) between two such
    addresses, from its first SIP message to its BYE (a port another call reuses later is not
    this call's)."""
    needle = call_id.encode()
    sip: list[int] = []
    media: list[tuple[int, float, tuple[str, int], tuple[str, int]]] = []
    endpoints: set[tuple[str, int]] = set()
    first = last = None
    ended = False
    for item in items:
        if not isinstance(item, Payload):
            continue
        if needle in item.data and _has_call_id(item.data, needle):
            sip.append(item.frame)
            first = item.time if first is None else first
            last = item.time
            ended = ended or item.data.startswith((b"BYE ", b"CANCEL "))
            endpoints |= _sdp_endpoints(item.data)
        elif item.transport == "udp" and item.data[:1] and item.data[0] >> 6 == 2:  # RTP/RTCP version 2
            media.append((item.frame, item.time, (item.src, item.sport), (item.dst, item.dport)))
    if first is None:
        return []
    # a call whose BYE is in the capture has no media after it; one without runs to the end
    until = (last or first) + MEDIA_TAIL_S if ended else float("inf")
    during = [(n, a in endpoints, b in endpoints) for n, t, a, b in media if first <= t <= until]
    # both ends announced by the call's SDP; only where no datagram is (a sender that does
    # not send from the port it announced), one end will do
    picked = [n for n, a, b in during if a and b] or [n for n, a, b in during if a or b]
    return sorted(sip + picked)


def _sdp_endpoints(data: bytes) -> set[tuple[str, int]]:
    """The RTP and RTCP addresses an SDP body in ``data`` announces (none when there is none)."""
    head, sep, body = data.partition(b"\r\n\r\n")
    if not sep or b"v=0" not in body[:8]:
        return set()
    try:
        sdp = SessionDescription.parse(body)
    except ParseError:
        return set()
    out: set[tuple[str, int]] = set()
    for m in sdp.media:
        conn = m.connection or sdp.connection
        if conn is None or not m.port:
            continue
        address = conn.address.split("/", 1)[0]
        out |= {(address, m.port), (address, m.port + 1)}
    return out


def _has_call_id(data: bytes, needle: bytes) -> bool:
    """The message's Call-ID (or compact ``i``) header is exactly ``needle``."""
    head = data.split(b"\r\n\r\n", 1)[0]
    for line in head.split(b"\n"):
        name, sep, value = line.partition(b":")
        if sep and name.strip().lower() in (b"call-id", b"i") and value.strip() == needle:
            return True
    return False


def _copy(path: Path, wanted: set[int], out: Path) -> list[int]:
    """Write the ``wanted`` frames of ``path`` to ``out`` (pcapng, one interface per link type)."""
    records: list[tuple[int, float, int, bytes]] = []
    for rec in FrameSource(path):
        if rec.__class__ is tuple and rec[0] in wanted:  # type: ignore[index]
            records.append(rec)  # type: ignore[arg-type]
    linktypes = sorted({r[2] for r in records})
    index = {lt: i for i, lt in enumerate(linktypes)}
    write_pcapng(out, [(index[lt], ts, data) for _, ts, lt, data in records], linktypes)
    return [r[0] for r in records]


class LiveCapture:
    """Display filters over calls of a capture that is still being written (a run's).

    The capture tool hands packets over in blocks, about a second late: a call's frames
    are taken once they have stopped changing for ``quiet_s`` (at most ``timeout_s``), and
    kept, so the next assertion on the same call costs only the dissection. Both front
    ends use this: the Robot keywords and the pytest plugin's ``voipqa_capture``.
    """

    def __init__(self, path: Path, workdir: Path, *, timeout_s: float = 15.0, quiet_s: float = 1.5) -> None:
        self.path = Path(path)
        self.workdir = Path(workdir)
        self.timeout_s, self.quiet_s = timeout_s, quiet_s
        self._settled: dict[str, CallCapture] = {}

    def scope(self, call_id: str | None) -> CallCapture:
        """The frames of ``call_id`` once settled (None: the whole capture as it is now)."""
        if call_id is None:
            return whole_capture(self.path)
        if call_id not in self._settled:
            self._settled[call_id] = self._settle(call_id)
        return self._settled[call_id]

    def _settle(self, call_id: str) -> CallCapture:
        deadline = time.monotonic() + self.timeout_s
        last: tuple[int, ...] | None = None
        since = time.monotonic()
        while True:
            try:
                scope: CallCapture | None = call_capture(self.path, call_id, self.workdir)
            except NoCallFrames:
                scope = None
            frames = tuple(scope.frames or ()) if scope else ()
            if frames != last:
                last, since = frames, time.monotonic()
            elif scope is not None and time.monotonic() - since >= self.quiet_s:
                return scope
            if time.monotonic() > deadline:
                if scope is None:
                    raise NoCallFrames(f"{self.path}: no frames for call {call_id!r}")
                return scope
            time.sleep(0.3)

    def match(self, call_id: str | None, expression: str, fields: Iterable[str] = ()) -> tuple[CallCapture, list[Match]]:
        """The scope and the frames of it that ``expression`` matches (with ``fields``)."""
        check_filter(expression)
        scope = self.scope(call_id)
        return scope, match(scope, expression, fields)

    def should_match(self, call_id: str | None, expression: str, count: int | None = None) -> list[Match]:
        """AssertionError unless a frame (exactly ``count`` frames) matches."""
        scope, found = self.match(call_id, expression)
        if (count is None and not found) or (count is not None and len(found) != int(count)):
            want = "at least 1" if count is None else str(count)
            raise AssertionError(f"{expression}: {len(found)} frame(s) of {scope.describe()} match, expected {want}")
        return found

    def should_not_match(self, call_id: str | None, expression: str) -> None:
        """AssertionError naming the frames when any matches."""
        scope, found = self.match(call_id, expression)
        if found:
            raise AssertionError(f"{expression}: frame(s) {', '.join(str(m.frame) for m in found[:10])} of "
                                 f"{scope.describe()} match, expected none")

    def fields(self, call_id: str | None, name: str, expression: str | None = None) -> list[str]:
        """Every value of field ``name`` in the frames matching ``expression`` (default: having it)."""
        _, found = self.match(call_id, expression or name, (name,))
        return [v for m in found for v in m.fields[name]]

    def field_should_be(self, call_id: str | None, name: str, expected: str) -> None:
        """AssertionError unless the first value of ``name`` is ``expected``."""
        values = self.fields(call_id, name)
        if not values:
            raise AssertionError(f"{name}: in no frame of {self.scope(call_id).describe()}")
        if values[0] != str(expected):
            raise AssertionError(f"{name}: first value {values[0]!r}, expected {str(expected)!r}")


#: expert severities that are a complaint (epan/proto.h PI_WARN, PI_ERROR)
_EXPERT_WARN = 0x00600000
#: frames judged per tshark run (the display filter lists them)
_FRAMES_PER_RUN = 500
#: flagged frames judged at most: a second opinion, not a second analysis
MAX_JUDGED_FRAMES = 5000


def frame_verdicts(path: str | Path, frames: Iterable[int], sip_ports: Iterable[int] = ()) -> dict[int, str]:
    """Wireshark's verdict on each of ``frames`` of ``path``: its expert messages of warning
    or error severity (and "Malformed Packet"), or "no complaint". voipqa's SIP ports are
    decoded as SIP, as :mod:`qa.analysis.tshark` does, so both judge the same bytes."""
    from pyshark.tshark.output_parser.tshark_xml import packet_from_xml_packet

    wanted = sorted(set(frames))[:MAX_JUDGED_FRAMES]
    decode = [a for p in sorted(set(sip_ports) - {5060, 5061})[:32]
              for a in ("-d", f"udp.port=={p},sip", "-d", f"tcp.port=={p},sip")]
    verdicts = {n: "no complaint" for n in wanted}
    for start in range(0, len(wanted), _FRAMES_PER_RUN):
        chunk = ",".join(str(n) for n in wanted[start:start + _FRAMES_PER_RUN])
        argv = [require_tool("tshark"), "-n", "-r", str(path), *decode, "-Y", f"frame.number in {{{chunk}}}",
                "-T", "pdml"]
        with subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE) as proc:
            assert proc.stdout is not None and proc.stderr is not None
            for xml in _pdml_packets(proc.stdout):
                packet = packet_from_xml_packet(xml)
                complaints = _complaints(packet)
                if complaints:
                    verdicts[int(packet.number)] = "; ".join(complaints)
            stderr = proc.stderr.read().decode(errors="replace")
        if proc.returncode not in (0, 2):   # 2: some packets were cut short, as tshark says of many captures
            raise BadInput(f"{path}: tshark failed: {_tshark_reason(stderr)}")
    return verdicts


def _complaints(packet: object) -> list[str]:
    out: list[str] = []
    for layer in getattr(packet, "layers", []):
        if getattr(layer, "layer_name", "") == "_ws.malformed":
            out.append("Malformed Packet")
        messages = layer.get_field("_ws.expert.message")
        severities = layer.get_field("_ws.expert.severity")
        if messages is None:
            continue
        sev = [int(s.show) if str(s.show).isdigit() else 0 for s in getattr(severities, "all_fields", [])]
        for i, msg in enumerate(getattr(messages, "all_fields", [messages])):
            if (sev[i] if i < len(sev) else _EXPERT_WARN) >= _EXPERT_WARN:
                out.append(str(msg.show))
    return list(dict.fromkeys(out))
