"""SIPp's trace files, parsed: the message log into per-call results, the stat CSV, errors.

``-trace_msg`` (SIPp 3.6.1) writes one entry per SIP message::

    ----------------------------------------------- 2026-11-28 00:15:22.577396
    UDP message sent (512 bytes):
    <blank line>
    <exactly 512 bytes of the message, CRLF line ends>
    <newline>

and for a reception ``UDP message received [309] bytes :`` (transport ``UDP``/``TCP``;
``control message`` for 3PCC twin sockets). The timestamp is local wall-clock time.
Other lines may appear between entries ("Problem EAGAIN on socket ...", and
"Ignoring provisional ... message for transaction ..." notes whose separator carries no
timestamp); they are skipped. The message text is taken by its byte count, so a body
that happens to contain a separator line cannot confuse the parser.

The SIP and SDP are parsed with the project's sans-I/O parsers (:mod:`qa.sip`,
:mod:`qa.sdp`); a message they reject is counted in ``CallResult.parse_errors`` and
otherwise ignored.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Iterable

from qa.errors import ParseError
from qa.sdp import SessionDescription
from qa.sip import Request, Response, parse_message, parse_uri

from qa.sipp.agent import mask_secrets

_ENTRY_RE = re.compile(
    rb"^-{47} (\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(?:\.\d+)?)\n"
    rb"([A-Za-z0-9]+) (control )?message (sent|received) "
    rb"(?:\((\d+) bytes\):|\[(\d+)\] bytes :)\n\n",
    re.MULTILINE,
)
_ERROR_PREFIX_RE = re.compile(r"^\d{4}-\d\d-\d\d\t[\d:.]+\t[\d.]+: ?")


@dataclass
class TracedMessage:
    """One entry of the ``-trace_msg`` log."""

    direction: str          # "sent" | "received"
    timestamp: float        # unix time
    transport: str          # "udp" | "tcp" | ...
    size: int
    data: bytes
    control: bool = False

    @property
    def sent(self) -> bool:
        return self.direction == "sent"

    def parse(self) -> Request | Response:
        """The SIP message (``ParseError`` if it is not one)."""
        return parse_message(self.data)


def _wallclock(stamp: bytes) -> float:
    # SIPp formats the time with localtime(): a naive datetime is local time.
    return datetime.strptime(stamp.decode("ascii"), "%Y-%m-%d %H:%M:%S.%f"
                             if b"." in stamp else "%Y-%m-%d %H:%M:%S").timestamp()


def parse_message_log(data: bytes | str | Path) -> list[TracedMessage]:
    """Parse a ``-trace_msg`` file (path or its bytes) into messages, in file order."""
    if isinstance(data, Path):
        data = data.read_bytes() if data.exists() else b""
    elif isinstance(data, str):
        data = data.encode("utf-8", "surrogateescape")
    out: list[TracedMessage] = []
    pos = 0
    while True:
        m = _ENTRY_RE.search(data, pos)
        if m is None:
            break
        size = int(m.group(5) or m.group(6))
        start = m.end()
        end = start + size
        nxt = _ENTRY_RE.search(data, start)
        if end > len(data) or (nxt is not None and nxt.start() < end):
            # size does not fit (truncated file or odd count): take up to the next entry
            end = nxt.start() if nxt is not None else len(data)
            body = data[start:end]
            if body.endswith(b"\n\n"):
                body = body[:-1]
        else:
            body = data[start:end]
        out.append(TracedMessage(
            direction=m.group(4).decode(),
            timestamp=_wallclock(m.group(1)),
            transport=m.group(2).decode().lower(),
            size=size,
            data=body,
            control=m.group(3) is not None,
        ))
        pos = max(end, m.end())
    return out


@dataclass
class CallResult:
    """One call as the SIPp side (the customer) witnessed it: DESIGN §6 customer fields."""

    call_id: str
    role: str = "caller"                 # caller (we sent the INVITE) | callee
    from_uri: str | None = None
    to_uri: str | None = None
    from_user: str | None = None
    to_user: str | None = None
    transport: str | None = None
    offered_codecs: list[str] = field(default_factory=list)
    answered_codec: str | None = None
    answered_codecs: list[str] = field(default_factory=list)  # every format of the SDP answer
    started: float | None = None         # first INVITE (unix time)
    answered: float | None = None        # 2xx to the INVITE
    ended: float | None = None           # BYE, or the final failure response
    final_code: int | None = None        # final response to the last INVITE
    final_reason: str | None = None
    pdd_ms: float | None = None          # first INVITE -> first 18x
    setup_ms: float | None = None        # first INVITE -> 2xx
    duration_s: float | None = None      # 2xx -> BYE
    challenges: int = 0                  # 401/407 received for the INVITEs
    bye_by: str | None = None            # caller | callee
    method: str | None = None            # the call's initial request: INVITE (or REGISTER, ...)
    invites: int = 0                     # INVITE transactions (1, or 2 after a challenge)
    provisional: list[int] = field(default_factory=list)
    messages: int = 0
    retransmissions: int = 0             # messages SIPp sent again (same start line/CSeq/branch)
    request_bytes: int | None = None     # size of the first initial request (INVITE) we sent
    transport_sent: str | None = None    # transport that request went over ("udp" | "tcp")
    session_expires: int | None = None   # Session-Expires granted in the 2xx (RFC 4028), seconds
    min_se: int | None = None            # Min-SE of a 422 response (RFC 4028 §6), seconds
    dtmf_sent: str | None = None         # digits the agent was told to send (Agent.dtmf)
    parse_errors: list[str] = field(default_factory=list)

    @property
    def answered_ok(self) -> bool:
        return self.final_code is not None and 200 <= self.final_code < 300

    @property
    def sip_from(self) -> str | None:
        return self.from_user

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _user_of(uri_text: str | None) -> str | None:
    if not uri_text:
        return None
    try:
        return parse_uri(uri_text).user
    except ParseError:
        m = re.match(r"sips?:([^@;>]+)@", uri_text)
        return m.group(1) if m else None


def _codecs(body: bytes) -> list[str] | None:
    if not body or not body.strip():
        return None
    try:
        sdp = SessionDescription.parse(body)
    except ParseError:
        return None
    if not sdp.media:
        return []
    return sdp.media[0].codec_names()


def _delta_seconds(msg: Request | Response, name: str) -> int | None:
    """The leading delta-seconds of a header like ``Session-Expires: 90;refresher=uac``."""
    m = re.match(r"\s*(\d+)", msg.headers.get(name) or "")
    return int(m.group(1)) if m else None


def _is_sdp(msg: Request | Response) -> bool:
    ctype = (msg.headers.get("content-type") or "").lower()
    return bool(msg.body.strip()) and (not ctype or "application/sdp" in ctype)


def build_calls(messages: Iterable[TracedMessage]) -> list[CallResult]:
    """Group traced messages by Call-ID and derive one :class:`CallResult` per call."""
    per_call: dict[str, list[tuple[TracedMessage, Request | Response]]] = {}
    errors: dict[str, list[str]] = {}
    orphans: list[str] = []
    for tm in messages:
        if tm.control:
            continue
        try:
            msg = tm.parse()
            call_id = msg.call_id
        except ParseError as exc:
            m = re.search(rb"^(?:Call-ID|i)\s*:\s*(\S+)", tm.data, re.MULTILINE | re.IGNORECASE)
            note = f"{tm.direction} message at {tm.timestamp:.6f}: {exc}"
            if m:
                errors.setdefault(m.group(1).decode("utf-8", "replace"), []).append(note)
            else:
                orphans.append(note)
            continue
        if not call_id:
            orphans.append(f"{tm.direction} message at {tm.timestamp:.6f}: no Call-ID")
            continue
        per_call.setdefault(call_id, []).append((tm, msg))
    calls = [_one_call(cid, items) for cid, items in per_call.items()]
    for call in calls:
        call.parse_errors = errors.pop(call.call_id, [])
    for cid, notes in errors.items():  # calls none of whose messages parsed
        calls.append(CallResult(call_id=cid, parse_errors=notes))
    return calls


def _one_call(call_id: str, items: list[tuple[TracedMessage, Request | Response]]) -> CallResult:
    call = CallResult(call_id=call_id, messages=len(items))
    seen_sent: set[tuple[str, str, str]] = set()
    invite_cseqs: list[int] = []              # setup INVITE transactions, in order
    finals: dict[int, Response] = {}          # cseq -> final response
    final_times: dict[int, float] = {}
    bye_time: float | None = None
    offer_done = answer_done = False
    initial: str | None = None                # INVITE, or REGISTER/OPTIONS/... for other scenarios

    for tm, msg in items:
        if call.transport is None:
            call.transport = tm.transport
        if tm.sent:
            via = msg.headers.get("via") or ""
            first = bytes(tm.data.split(b"\r\n", 1)[0]).decode("utf-8", "replace")
            try:
                cseq_text = msg.headers.get("cseq") or ""
            except ParseError:
                cseq_text = ""
            key = (first, cseq_text, via)
            if key in seen_sent:
                call.retransmissions += 1
                continue
            seen_sent.add(key)
        try:
            seq, method = msg.cseq
        except ParseError as exc:
            call.parse_errors.append(f"{tm.direction} message at {tm.timestamp:.6f}: {exc}")
            continue

        if isinstance(msg, Request):
            if initial is None and msg.method not in ("ACK", "BYE", "CANCEL"):
                initial = msg.method
            if msg.method == initial:
                try:
                    to_tag = msg.to_addr.tag
                except ParseError:
                    to_tag = None
                if to_tag is None and seq not in invite_cseqs:  # initial INVITE or auth retry
                    invite_cseqs.append(seq)
                    if call.started is None:
                        call.started = tm.timestamp
                        call.role = "caller" if tm.sent else "callee"
                        if tm.sent:
                            call.request_bytes, call.transport_sent = tm.size, tm.transport
                        try:
                            call.from_uri = msg.from_addr.uri
                            call.to_uri = msg.to_addr.uri
                        except ParseError:
                            pass
                        call.from_user = _user_of(call.from_uri)
                        call.to_user = _user_of(call.to_uri)
                    if not offer_done and _is_sdp(msg):
                        codecs = _codecs(msg.body)
                        if codecs is not None:
                            call.offered_codecs = codecs
                            offer_done = True
            elif msg.method == "BYE" and bye_time is None:
                bye_time = tm.timestamp
                we_sent = tm.sent
                ours = call.role
                other = "callee" if ours == "caller" else "caller"
                call.bye_by = ours if we_sent else other
            continue

        # responses
        if method != initial or seq not in invite_cseqs:
            continue
        code = msg.status
        if 100 < code < 200:
            call.provisional.append(code)
            if call.pdd_ms is None and 180 <= code < 190 and call.started is not None:
                call.pdd_ms = round((tm.timestamp - call.started) * 1000.0, 3)
        if code > 100 and not answer_done and _is_sdp(msg):
            codecs = _codecs(msg.body)
            if codecs:
                call.answered_codec = codecs[0]
                call.answered_codecs = list(codecs)
                answer_done = True
        if code >= 200 and seq not in finals:
            finals[seq] = msg
            final_times[seq] = tm.timestamp
            if code in (401, 407):
                call.challenges += 1
            if code == 422:
                call.min_se = _delta_seconds(msg, "min-se")
            if 200 <= code < 300 and call.answered is None:
                call.answered = tm.timestamp
                call.session_expires = _delta_seconds(msg, "session-expires")

    call.method = initial
    call.invites = len(invite_cseqs)
    if invite_cseqs:
        last = invite_cseqs[-1]
        final = finals.get(last)
        if final is not None:
            call.final_code = final.status
            call.final_reason = final.reason
        if call.started is not None and call.answered is not None:
            call.setup_ms = round((call.answered - call.started) * 1000.0, 3)
        if bye_time is not None and call.answered is not None:
            call.ended = bye_time
            call.duration_s = round(bye_time - call.answered, 6)
        elif final is not None and (final.status >= 300 or initial != "INVITE"):
            call.ended = final_times[last]
        elif bye_time is not None:
            call.ended = bye_time
    return call


# -- -trace_stat -----------------------------------------------------------------
def _value(text: str) -> Any:
    text = text.strip()
    if re.fullmatch(r"-?\d+", text):
        return int(text)
    if re.fullmatch(r"-?\d+\.\d*(?:[eE][-+]?\d+)?|-?\d+[eE][-+]?\d+", text):
        return float(text)
    return text


def parse_stat_file(data: str | bytes | Path) -> list[dict[str, Any]]:
    """Parse a ``-trace_stat`` CSV (``;``-separated, header row) into one dict per row.

    Counters become ints, rates floats; times stay text (``00:00:00:208000``,
    ``2026-11-28\\t00:15:36.902252\\t1795824936.902252``).
    """
    if isinstance(data, Path):
        data = data.read_bytes() if data.exists() else b""
    if isinstance(data, bytes):
        data = data.decode("utf-8", "replace")
    lines = [line for line in data.splitlines() if line.strip()]
    if not lines:
        return []
    header = lines[0].split(";")
    rows = []
    for line in lines[1:]:
        values = line.split(";")
        row = {name: _value(value) for name, value in zip(header, values) if name}
        if row:
            rows.append(row)
    return rows


#: The counters a summary keeps (the final cumulative values).
SUMMARY_COUNTERS = (
    "TotalCallCreated", "CurrentCall", "SuccessfulCall(C)", "FailedCall(C)",
    "Retransmissions(C)", "FailedUnexpectedMessage(C)", "FailedMaxUDPRetrans(C)",
    "FailedTimeoutOnRecv(C)", "FailedTimeoutOnSend(C)", "FailedTcpConnect(C)",
    "FailedTcpClosed(C)", "FailedCallRejected(C)", "FailedOutboundCongestion(C)",
    "OutOfCallMsgs(C)", "DeadCallMsgs(C)", "Warnings(C)", "FatalErrors(C)",
    "CallRate(C)", "ElapsedTime(C)", "ResponseTime1(C)", "CallLength(C)",
)


def stat_summary(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """The last row's cumulative counters (empty when SIPp wrote no row)."""
    if not rows:
        return {}
    last = rows[-1]
    return {name: last[name] for name in SUMMARY_COUNTERS if name in last}


# -- -trace_err ------------------------------------------------------------------
def parse_error_file(data: str | bytes | Path) -> list[str]:
    """The error log as lines, timestamps stripped, digest secrets masked, blanks dropped."""
    if isinstance(data, Path):
        data = data.read_bytes() if data.exists() else b""
    if isinstance(data, bytes):
        data = data.decode("utf-8", "replace")
    out = []
    for line in data.splitlines():
        line = _ERROR_PREFIX_RE.sub("", line.rstrip("\r"))
        if line.strip():
            out.append(mask_secrets(line))
    return out
