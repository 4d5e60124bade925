"""Dialog and transaction correlation per Call-ID, with bounded state.

A :class:`CallTracker` is fed normalised :class:`SipEvent` s and RTP packets in capture
order. It keeps state only for live Call-IDs; a call that is over is summarised
(:class:`CallSummary`), judged (the call rules of :mod:`qa.analysis.findings`), handed
to ``on_finish`` and forgotten. A call is over, in capture time:

* BYE answered (any final response) + ``grace_s`` (RFC 3261 §15.1.2),
* final failure (>= 300) to the initial INVITE + ``grace_s`` (room for the ACK and the
  re-INVITE with credentials after a 401/407, §22.2),
* a non-INVITE Call-ID (REGISTER, OPTIONS, ...) with a final non-challenge answer + grace,
* no SIP or RTP for ``idle_s``, or the end of the capture.

Transactions are keyed on (CSeq number, method) with ACK for a non-2xx folded into its
INVITE (§17.1.1.3). A response is also matched to its request the way a client transaction
does (§17.1.3: top Via branch + CSeq method); one whose CSeq number or method differs from
that request's is a ``call.cseq-mismatch``. Retransmissions (§17.1.1.2, §17.2.1) are the
same start line, CSeq, Via branch and To-tag on the same hop (source and destination) seen
again. Error responses are counted once per (CSeq, method, code) of a call, the way
HOMER's alerts count them, whichever hop or retransmission carried them.

The negotiated payload types are those both sides listed in their SDP (RFC 3264 §6.1: the
answer's formats are a subset of the offer's); RTP on any other payload type is
``rtp.payload-type``. RTP sent before the first 2xx is counted per stream as early media
(RFC 3960).

PDD follows RFC 6076 §4.1 (Session Request Delay: first INVITE to the first 18x or
final non-challenge response, on the hop the caller used); setup time is first INVITE to
the 2xx (§4.2, Session Establishment).

Length: one state machine (dialogs, transactions, media per Call-ID) whose parts share
the tracker's bounded state; split, they would pass that state around instead of owning it.
"""

from __future__ import annotations

import heapq
from collections import Counter
from dataclasses import dataclass, field
from typing import Callable

from qa.analysis.findings import Finding, FindingSink
from qa.analysis.rtp import MediaRegistry, MediaTarget, RtpStream, StreamSummary

__all__ = ["SipEvent", "LadderEvent", "CallSummary", "CallTracker", "Limits"]

_CHALLENGES = (401, 407)


@dataclass(slots=True)
class SipEvent:
    """One SIP message, normalised for correlation (what the engine reads with the
    lenient reader). ``method`` is the CSeq method for a response; ``status`` is 0 for
    a request. ``media`` is the SDP's audio targets ((address, port, rtpmap, ptime,
    direction attribute, codec names)) when the message carries SDP."""

    frame: int
    time: float
    src: str
    dst: str
    transport: str
    method: str
    status: int
    reason: str
    call_id: str
    cseq: int
    from_tag: str | None
    to_tag: str | None
    branch: str | None
    headers: list[tuple[str, str]] | None = None   # (name, value), read once per call
    sdp: str | None = None
    media: list[tuple[str, int, dict[int, tuple[str, int]], int | None, str, list[str]]] | None = None
    info_digit: str | None = None
    raw: bytes | None = None

    @property
    def is_request(self) -> bool:
        return self.status == 0

    @property
    def label(self) -> str:
        if self.is_request:
            return self.method
        return f"{self.status} {self.reason}".strip()


@dataclass(slots=True)
class LadderEvent:
    """One arrow of the ladder: who sent what to whom, and what was found on it."""

    frame: int
    time: float
    src: str
    dst: str
    transport: str
    label: str
    cseq: str
    is_request: bool
    retransmission: bool = False
    sdp: str | None = None
    message: str | None = None
    findings: list[Finding] = field(default_factory=list)


@dataclass(slots=True)
class Limits:
    """Bounds that keep memory flat whatever the capture size."""

    grace_s: float = 4.0
    idle_s: float = 300.0
    max_events: int = 200          # ladder events kept per call
    max_events_kept_call: int = 10_000  # for the one call a ladder is drawn of
    max_call_findings: int = 50
    max_transactions: int = 256
    max_retrans_keys: int = 1024
    max_streams: int = 32          # RTP streams per call
    loss_warning: float = 1.0      # percent
    loss_error: float = 5.0
    mos_warning: float = 3.6
    one_way_packets: int = 25      # packets one way, none back (0.5 s at 20 ms)
    mos_min_packets: int = 50


@dataclass
class CallSummary:
    """Everything voipqa says about one Call-ID once it is over (``pcap calls``)."""

    call_id: str
    kind: str                       # "call" (INVITE dialog) or the first method
    first_frame: int
    start: float
    end: float
    from_uri: str | None = None
    to_uri: str | None = None
    caller: str | None = None       # ip:port that sent the first request
    callee: str | None = None
    final_code: int | None = None
    final_reason: str | None = None
    answered: bool = False
    pdd_ms: float | None = None
    setup_ms: float | None = None
    answer_frame: int | None = None  # the first 2xx to the initial INVITE, any hop
    answer_time: float | None = None
    ended_by: str = ""              # bye | cancel | failed | done | idle | capture-end
    bye_from: str | None = None     # caller | callee
    messages: int = 0
    retransmissions: int = 0
    error_responses: dict[str, int] = field(default_factory=dict)
    offered_codecs: list[str] = field(default_factory=list)
    answered_codec: str | None = None
    negotiated_payload_types: list[int] = field(default_factory=list)  # listed by both sides' SDP
    streams: list[StreamSummary] = field(default_factory=list)
    dtmf_rtp: str = ""
    dtmf_info: str = ""
    events: list[LadderEvent] = field(default_factory=list)
    events_dropped: int = 0
    findings: list[Finding] = field(default_factory=list)

    @property
    def duration_s(self) -> float:
        return round(self.end - self.start, 6)

    def media_packets(self, direction: str) -> int:
        return sum(s.packets for s in self.streams if s.direction == direction)


@dataclass(slots=True)
class _Txn:
    method: str
    final: int = 0


class _Call:
    """Live state of one Call-ID (private to the tracker)."""

    __slots__ = ("summary", "caller_tag", "origin", "invite_time", "txns", "retrans_keys",
                 "codes_seen", "cancel", "bye_final", "failed", "done", "deadline", "last",
                 "streams", "targets", "media_keys", "keep_raw", "origin_final", "pdd_done",
                 "requests", "pts_caller", "pts_callee")

    def __init__(self, ev: SipEvent, keep_raw: bool) -> None:
        headers = ev.headers or ()
        self.summary = CallSummary(call_id=ev.call_id, kind=ev.method if ev.is_request else "?",
                                   first_frame=ev.frame, start=ev.time, end=ev.time,
                                   from_uri=next((v for n, v in headers if n == "From"), None),
                                   to_uri=next((v for n, v in headers if n == "To"), None))
        self.caller_tag = ev.from_tag if ev.is_request else None
        if ev.is_request:
            self.summary.caller, self.summary.callee = ev.src, ev.dst
        self.origin: tuple[str, str] | None = None
        self.invite_time: float | None = None
        self.txns: dict[tuple[int, str], _Txn] = {}
        self.retrans_keys: set[tuple] = set()
        self.codes_seen: set[tuple[int, str, int]] = set()
        self.cancel = False
        self.bye_final = False
        self.failed = False
        self.done = False
        self.deadline: float | None = None
        self.last = ev.time
        self.streams: list[RtpStream] = []
        self.targets: set[str] = set()  # directions learned from SDP
        self.media_keys: list[tuple[str, int]] = []
        self.keep_raw = keep_raw
        self.origin_final = False
        self.pdd_done = False
        self.requests: dict[tuple[str, str], set[int]] = {}  # (Via branch, method) -> CSeq numbers
        self.pts_caller: set[int] = set()   # payload types the caller's SDPs listed
        self.pts_callee: set[int] = set()


class CallTracker:
    """Correlates SIP and RTP into calls; emits findings into ``sink``."""

    def __init__(self, sink: FindingSink, *, on_finish: Callable[[CallSummary], None] | None = None,
                 limits: Limits | None = None, keep_raw_for: str | None = None) -> None:
        self.sink = sink
        self.on_finish = on_finish
        self.limits = limits or Limits()
        self.keep_raw_for = keep_raw_for
        self.live: dict[str, _Call] = {}
        self.media = MediaRegistry()
        self.streams: dict[tuple[str, str, int], RtpStream] = {}
        self._heap: list[tuple[float, int, str]] = []
        self._seq = 0
        self.error_responses: Counter[str] = Counter()
        self.retransmissions = 0
        self.calls = 0        # INVITE dialogs finished
        self.dialogs = 0      # every Call-ID finished
        self.rtp_packets = 0
        self.rtp_unmatched = 0
        self.rtp_streams = 0

    # -- time ------------------------------------------------------------------------
    def _schedule(self, call: _Call, deadline: float) -> None:
        call.deadline = deadline
        self._seq += 1
        heapq.heappush(self._heap, (deadline, self._seq, call.summary.call_id))

    def advance(self, now: float) -> None:
        """Finish every call whose deadline (grace or idle) has passed at capture time ``now``."""
        heap = self._heap
        while heap and heap[0][0] <= now:
            deadline, _, call_id = heapq.heappop(heap)
            call = self.live.get(call_id)
            if call is None or call.deadline != deadline:
                continue
            if call.done or call.last + self.limits.idle_s <= now:
                self._finish(call, call.summary.ended_by or "idle")
            else:
                self._schedule(call, call.last + self.limits.idle_s)

    def close(self) -> None:
        """End of capture: finish every live call, oldest first."""
        for call in sorted(self.live.values(), key=lambda c: c.summary.start):
            self._finish(call, call.summary.ended_by or "capture-end")

    # -- SIP -------------------------------------------------------------------------
    def on_sip(self, ev: SipEvent, findings: list[Finding]) -> None:
        """Account one SIP message and the strict checker's findings on it."""
        call = self.live.get(ev.call_id)
        if call is None:
            call = _Call(ev, ev.call_id == self.keep_raw_for)
            self.live[ev.call_id] = call
            self._schedule(call, ev.time + self.limits.idle_s)
        call.last = ev.time
        summary = call.summary
        summary.end = ev.time
        summary.messages += 1
        if call.caller_tag is None and ev.is_request:
            call.caller_tag = ev.from_tag
        retrans = self._retransmission(call, ev)
        self._ladder(call, ev, retrans, findings)
        self._call_findings(call, findings)
        if retrans:
            return
        if ev.is_request:
            if call.done and ev.method not in ("ACK", "BYE", "CANCEL"):
                call.done, summary.ended_by = False, ""  # the Call-ID lives on
            self._request(call, ev)
        else:
            self._response(call, ev)
        if ev.media:
            self._learn_media(call, ev)

    def _retransmission(self, call: _Call, ev: SipEvent) -> bool:
        key = (ev.src, ev.dst, ev.status, ev.method, ev.cseq, ev.branch, ev.to_tag)
        if key in call.retrans_keys:
            call.summary.retransmissions += 1
            self.retransmissions += 1
            return True
        if len(call.retrans_keys) < self.limits.max_retrans_keys:
            call.retrans_keys.add(key)
        return False

    def _ladder(self, call: _Call, ev: SipEvent, retrans: bool, findings: list[Finding]) -> None:
        summary = call.summary
        cap = self.limits.max_events_kept_call if call.keep_raw else self.limits.max_events
        if len(summary.events) >= cap:
            summary.events_dropped += 1
            return
        raw = ev.raw.decode("utf-8", "replace") if call.keep_raw and ev.raw is not None else None
        summary.events.append(LadderEvent(
            ev.frame, ev.time, ev.src, ev.dst, ev.transport, ev.label, f"{ev.cseq} {ev.method}",
            ev.is_request, retrans, ev.sdp if call.keep_raw else None, raw, list(findings)))

    def _call_findings(self, call: _Call, findings: list[Finding]) -> None:
        room = self.limits.max_call_findings - len(call.summary.findings)
        if room > 0:
            call.summary.findings.extend(findings[:room])

    def _txn(self, call: _Call, ev: SipEvent) -> _Txn:
        method = "INVITE" if ev.method == "ACK" else ev.method
        key = (ev.cseq, method)
        txn = call.txns.get(key)
        if txn is None:
            txn = _Txn(method)
            if len(call.txns) < self.limits.max_transactions:
                call.txns[key] = txn
        return txn

    def _remember_request(self, call: _Call, ev: SipEvent) -> None:
        """Note the request's (branch, method) -> CSeq for matching its responses (§17.1.3).
        ACK is left out: it has no response, and an ACK for a non-2xx reuses the INVITE's branch."""
        if ev.branch is None or ev.method == "ACK":
            return
        seen = call.requests.get((ev.branch, ev.method))
        if seen is None:
            if len(call.requests) >= self.limits.max_transactions:
                return
            seen = call.requests[(ev.branch, ev.method)] = set()
        seen.add(ev.cseq)

    def _check_cseq(self, call: _Call, ev: SipEvent) -> None:
        """A response carries its request's CSeq, number and method (RFC 3261 §8.2.6.2, §17.1.3)."""
        if ev.branch is None:
            return
        seen = call.requests.get((ev.branch, ev.method))
        if seen is not None:
            if ev.cseq not in seen:
                self._emit(call, "call.cseq-mismatch",
                           f"{ev.status} response has CSeq {ev.cseq} {ev.method}, its request (Via branch "
                           f"{ev.branch}) had CSeq {', '.join(map(str, sorted(seen)))} {ev.method}",
                           ev.frame, ev.time)
            return
        requests = sorted(f"{n} {m}" for (b, m), nums in call.requests.items() if b == ev.branch for n in nums)
        if requests:
            self._emit(call, "call.cseq-mismatch",
                       f"{ev.status} response has CSeq {ev.cseq} {ev.method}, but the request of its "
                       f"transaction (Via branch {ev.branch}) is CSeq {', '.join(requests)}",
                       ev.frame, ev.time)

    def _request(self, call: _Call, ev: SipEvent) -> None:
        summary = call.summary
        method = ev.method
        self._txn(call, ev)
        self._remember_request(call, ev)
        if method == "INVITE":
            if summary.kind != "call":
                summary.kind = "call"
            if ev.to_tag is None and call.invite_time is None:
                call.invite_time = ev.time
                call.origin = (ev.src, ev.dst)
                if ev.media:
                    summary.offered_codecs = list(ev.media[0][5])
        elif method == "CANCEL":
            call.cancel = True
        elif method == "BYE" and summary.bye_from is None:
            summary.bye_from = "caller" if ev.from_tag == call.caller_tag else "callee"
        elif method == "INFO" and ev.info_digit:
            summary.dtmf_info += ev.info_digit
        elif method == "ACK" and call.failed:
            self._end(call, summary.ended_by or "failed", ev.time)

    def _response(self, call: _Call, ev: SipEvent) -> None:
        code, method = ev.status, ev.method
        self._check_cseq(call, ev)
        if code >= 400 and (ev.cseq, method, code) not in call.codes_seen:
            call.codes_seen.add((ev.cseq, method, code))
            key = f"{method} {code}"
            self.error_responses[key] += 1
            errs = call.summary.error_responses
            errs[key] = errs.get(key, 0) + 1
        txn = self._txn(call, ev)
        if code >= 200 and not txn.final:
            txn.final = code
        if method == "INVITE":
            self._invite_response(call, ev)
        elif method == "BYE" and code >= 200:
            call.bye_final = True
            self._end(call, "bye", ev.time)
        elif call.summary.kind not in ("call", "?") and code >= 200 and code not in _CHALLENGES:
            self._end(call, "done", ev.time)

    def _on_origin_hop(self, call: _Call, ev: SipEvent) -> bool:
        return call.origin is not None and (ev.dst, ev.src) == call.origin

    def _invite_response(self, call: _Call, ev: SipEvent) -> None:
        summary, code = call.summary, ev.status
        if summary.kind != "call":
            summary.kind = "call"
        origin = self._on_origin_hop(call, ev)
        start = call.invite_time if call.invite_time is not None else summary.start
        if (not call.pdd_done and (180 <= code < 190 or (code >= 200 and code not in _CHALLENGES))
                and (origin or call.origin is None)):
            summary.pdd_ms = round((ev.time - start) * 1000, 3)
            call.pdd_done = True
        was = call.origin_final
        if code < 200 or (was and not origin):
            return  # a provisional, or another hop's answer when the caller's hop has one
        call.origin_final = was or origin
        if 200 <= code < 300:
            if summary.answer_frame is None:
                summary.answer_frame, summary.answer_time = ev.frame, ev.time
            if not summary.answered or (origin and not was):  # the caller's hop wins
                summary.setup_ms = round((ev.time - start) * 1000, 3)
                summary.final_code, summary.final_reason = code, ev.reason
                if ev.media:
                    summary.answered_codec = next(iter(ev.media[0][5]), None)
            summary.answered = True
            call.failed = call.done = False
            return
        if summary.answered:
            return  # a failed re-INVITE does not end the dialog (RFC 3261 §14.1)
        summary.final_code, summary.final_reason = code, ev.reason
        call.failed = code not in _CHALLENGES
        if call.failed:
            self._end(call, "cancel" if call.cancel and code == 487 else "failed", ev.time)

    def _end(self, call: _Call, how: str, now: float) -> None:
        call.summary.ended_by = how
        call.done = True
        self._schedule(call, now + self.limits.grace_s)

    # -- media -----------------------------------------------------------------------
    def _learn_media(self, call: _Call, ev: SipEvent) -> None:
        from_caller = (ev.from_tag == call.caller_tag) == ev.is_request
        direction = "backward" if from_caller else "forward"
        side = call.pts_caller if from_caller else call.pts_callee
        for address, port, rtpmap, ptime, attr, _ in ev.media or ():
            if port == 0:
                continue
            side.update(rtpmap)
            if attr in ("sendrecv", "recvonly"):
                call.targets.add(direction)
            key = self.media.learn(address, port, MediaTarget(ev.call_id, direction, rtpmap, ptime))
            if key not in call.media_keys and len(call.media_keys) < self.limits.max_streams:
                call.media_keys.append(key)

    def on_rtp(self, frame: int, time: float, src: str, dst: str, data: bytes,
               target: MediaTarget) -> None:
        """Account one RTP packet sent to a media address learned from SDP."""
        call = self.live.get(target.call_id)
        if call is None:
            self.rtp_unmatched += 1
            return
        self.rtp_packets += 1
        call.last = time
        ssrc = int.from_bytes(data[8:12], "big")
        key = (src, dst, ssrc)
        stream = self.streams.get(key)
        if stream is None:
            if len(call.streams) >= self.limits.max_streams:
                self.rtp_unmatched += 1
                return
            stream = RtpStream(src, dst, ssrc, target)
            self.streams[key] = stream
            call.streams.append(stream)
            self.rtp_streams += 1
        stream.feed(frame, time, data, not call.summary.answered)

    # -- end of a call -----------------------------------------------------------------
    def _finish(self, call: _Call, how: str) -> None:
        summary = call.summary
        summary.ended_by = how
        del self.live[summary.call_id]
        for stream in call.streams:
            self.streams.pop((stream.src, stream.dst, stream.ssrc), None)
        self.media.forget(summary.call_id, call.media_keys)
        summary.streams = [s.summary() for s in call.streams]
        self._negotiated(call)
        summary.dtmf_rtp = "".join(s.dtmf for s in summary.streams)
        if summary.streams:
            summary.end = max(summary.end, max(s.last_time for s in summary.streams))
        self.dialogs += 1
        if summary.kind == "call":
            self.calls += 1
            self._judge(call)
        if self.on_finish is not None:
            self.on_finish(summary)

    @staticmethod
    def _negotiated(call: _Call) -> None:
        """Payload types both sides listed; RTP on any other one is not negotiated (RFC 3264
        §5.1, §6.1), even when the receiver's own SDP lists it (an offer the answer declined)."""
        if not (call.pts_caller and call.pts_callee):
            return
        negotiated = call.pts_caller & call.pts_callee
        call.summary.negotiated_payload_types = sorted(negotiated)
        for st in call.summary.streams:
            st.unexpected_payload_types = sorted(set(st.unexpected_payload_types)
                                                 | (set(st.payload_types) - negotiated))

    def _emit(self, call: _Call, rule: str, reason: str, frame: int | None = None,
              time: float | None = None, severity: str | None = None) -> None:
        summary = call.summary
        finding = self.sink.emit(frame if frame is not None else summary.first_frame,
                                 time if time is not None else summary.start,
                                 summary.call_id, rule, reason, severity=severity)
        if len(summary.findings) < self.limits.max_call_findings:
            summary.findings.append(finding)
        for ev in summary.events:
            if ev.frame == finding.frame:
                ev.findings.append(finding)
                break

    def _final_event(self, call: _Call) -> LadderEvent | None:
        code = call.summary.final_code
        return next((e for e in reversed(call.summary.events)
                     if not e.is_request and e.label.startswith(f"{code} ") and "INVITE" in e.cseq),
                    None)

    def _judge(self, call: _Call) -> None:
        """The call rules (severity table in :mod:`qa.analysis.findings`); only for calls
        whose initial INVITE is in the capture (a call picked up midway cannot be judged)."""
        s = call.summary
        if call.invite_time is None:
            self._judge_media(call)
            return
        if s.final_code is None and not s.answered:
            self._emit(call, "call.no-final", "INVITE got no final response in the capture")
        elif call.failed and not (s.final_code == 487 and call.cancel):
            ev = self._final_event(call)
            self._emit(call, "call.failed", f"INVITE failed: {s.final_code} {s.final_reason or ''}".rstrip(),
                       ev.frame if ev else None, ev.time if ev else None)
        if s.answered and s.bye_from is None:
            self._emit(call, "call.no-bye", "answered call has no BYE in the capture",
                       s.events[-1].frame if s.events else None, s.events[-1].time if s.events else None)
        if s.retransmissions:
            self._emit(call, "sip.retransmissions", f"{s.retransmissions} retransmitted SIP message(s)")
        self._judge_media(call)

    def _judge_media(self, call: _Call) -> None:
        s, lim = call.summary, self.limits
        for st in s.streams:
            self._judge_stream(call, st)
        if s.answered and call.targets >= {"forward", "backward"}:
            fwd, back = s.media_packets("forward"), s.media_packets("backward")
            if max(fwd, back) >= lim.one_way_packets and min(fwd, back) == 0:
                missing = "callee to caller" if back == 0 else "caller to callee"
                self._emit(call, "rtp.one-way",
                           f"one-way audio: {max(fwd, back)} RTP packets one way, none {missing}")

    def _judge_stream(self, call: _Call, st: StreamSummary) -> None:
        lim = self.limits
        name = f"RTP {st.src} -> {st.dst} SSRC {st.ssrc:#010x}"
        if st.loss_percent > lim.loss_warning:
            severity = "error" if st.loss_percent > lim.loss_error else "warning"
            self._emit(call, "rtp.loss", f"{name}: {st.lost} of {st.expected} packets lost "
                       f"({st.loss_percent:.1f} %)", time=st.first_time, severity=severity)
        if st.sequence_errors:
            self._emit(call, "rtp.sequence", f"{name}: {st.sequence_errors} sequence error(s) "
                       "(duplicate, reordered or restarted)", time=st.first_time)
        if st.unexpected_payload_types:
            pts = ", ".join(map(str, st.unexpected_payload_types))
            self._emit(call, "rtp.payload-type", f"{name}: payload type {pts} not negotiated "
                       "(not in both sides' SDP)", time=st.first_time)
        if st.mos is not None and st.packets >= lim.mos_min_packets and st.mos < lim.mos_warning:
            self._emit(call, "rtp.mos", f"{name}: estimated MOS {st.mos:.2f} (G.107)",
                       time=st.first_time)
