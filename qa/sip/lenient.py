"""A forgiving, fast reading of a SIP message for call correlation (RFC 3261 §7).

:func:`read` runs on every SIP packet of a capture, including the ones the strict check
(:mod:`qa.sip.strict`) rejects, so that one bad header does not hide the call. It
pulls out what correlation needs (Call-ID, CSeq, tags, top branch, body) and nothing
else; it never raises and gives ``None`` only when there is no recognisable start line.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from qa.sip.headers import COMPACT_FORMS, canonical_name, pretty_name, split_list
from qa.sip.message import _find_header_end

__all__ = ["LenientMessage", "read"]

# Status-Line / Request-Line, tolerant of case, extra SP and trailing whitespace (§7.1, §7.2).
_STATUS_RE = re.compile(r"[Ss][Ii][Pp]/[0-9]+\.[0-9]+ +([0-9]{1,12})(?: +(.*))?\Z")
_REQUEST_RE = re.compile(r"([!-~]+) +(\S.*) +[Ss][Ii][Pp]/[0-9]+\.[0-9]+\s*\Z")
_TAG_RE = re.compile(r";\s*tag\s*=\s*([^;,\s>]+)", re.I)
_BRANCH_RE = re.compile(r";\s*branch\s*=\s*([^;,\s]+)", re.I)
_WANTED = frozenset({"call-id", "cseq", "from", "to", "via", "content-type", "content-length"})
_NAMES: dict[str, tuple[str, str]] = {}  # raw name -> (canonical key, name to report)
_LINE_MEMO_SIZE = 4096
#: A wanted header's stripped value and what correlation derives from it (:data:`_DERIVE`:
#: a str, a (CSeq number, method) pair or None, so typed Any).
Header = tuple[str, Any]
_LINE_MEMO: dict[str, tuple[str, Header, int]] = {}  # line -> _wanted_line(line)
_UNWANTED = ("", ("", None), 0)
_START_MEMO: dict[str, tuple[str, str | None, int | None, str | None]] = {}  # _read_start_line
#: Headers reported under their conventional spelling whatever the case or compact form
#: on the wire (RFC 3261 §7.3.3, §20); other names are reported as written.
_KNOWN = frozenset(COMPACT_FORMS.values()) | frozenset({
    "accept", "accept-encoding", "accept-language", "alert-info", "allow", "authentication-info",
    "authorization", "call-id", "call-info", "content-disposition", "content-language",
    "content-length", "cseq", "date", "error-info", "expires", "in-reply-to", "max-forwards",
    "mime-version", "min-expires", "organization", "priority", "proxy-authenticate",
    "proxy-authorization", "proxy-require", "record-route", "reply-to", "require",
    "retry-after", "route", "server", "timestamp", "unsupported", "user-agent", "warning",
    "www-authenticate", "rack", "rseq", "p-asserted-identity", "reason", "session-expires",
})


@dataclass(slots=True)
class LenientMessage:
    """What a forgiving reader could make of one SIP message.

    ``method`` is the request method, or for a response the CSeq method (as
    :attr:`qa.sip.Response.method`). ``cseq`` is the sequence number. ``headers`` are
    ``(name, value)`` per header line with folding undone and compact names expanded
    (``v``, ``VIA`` -> ``Via``; unknown headers as written). ``body`` is cut to a usable ``Content-Length`` and starts at
    byte ``body_offset`` of the input.

    ``headers`` is built on first use from the header lines kept in ``lines``: call
    correlation reads it once per call, not once per message.
    """

    kind: str  # "request" | "response"
    start_line: str
    method: str | None = None
    status: int | None = None
    reason: str | None = None
    call_id: str | None = None
    cseq: int | None = None
    cseq_method: str | None = None
    from_tag: str | None = None
    to_tag: str | None = None
    branch: str | None = None
    via_count: int = 0
    content_type: str | None = None
    body: bytes = b""
    body_offset: int = 0
    lines: list[str] = field(default_factory=list, repr=False, compare=False)
    _headers: list[tuple[str, str]] | None = field(default=None, repr=False, compare=False)

    @property
    def is_request(self) -> bool:
        return self.kind == "request"

    @property
    def headers(self) -> list[tuple[str, str]]:
        if self._headers is None:
            self._headers = _header_list(self.lines)
        return self._headers


def read(data: bytes) -> LenientMessage | None:
    """Read one SIP message forgivingly; ``None`` if it has no SIP start line.

    Total on every input (fuzzed): a bug here raises rather than posing as "not SIP", so
    the analyzer reports it (``analysis.internal-error``) instead of a silently lost message.
    """
    return _read(data if isinstance(data, bytes) else bytes(data))


def _read(data: bytes) -> LenientMessage | None:
    n = len(data)
    start = n - len(data.lstrip(b"\r\n"))
    end, body_start = _find_header_end(data, start)
    if end < 0:
        end = body_start = n
    head = data[start:end].decode("utf-8", "surrogateescape")
    if head.count("\n") != head.count("\r\n"):
        head = head.replace("\r\n", "\n")
        lines = head.split("\n")
    else:
        lines = head.split("\r\n")
    msg = _start_line(lines[0].rstrip("\r"))
    if msg is None:
        return None
    msg.lines = lines
    if "\n " in head or "\n\t" in head:  # folded lines: undo the folding first
        first, msg.via_count = _wanted(msg.headers)
    else:
        first, msg.via_count = _wanted_unfolded(lines)
    _correlation(msg, first)
    body = data[body_start:]
    length = (_first(first, "content-length") or "").strip()
    if length.isdigit() and length.isascii() and int(length) < len(body):
        body = body[:int(length)]
    msg.body = body
    msg.body_offset = body_start
    return msg


def _start_line(line: str) -> LenientMessage | None:
    """A new message for a Status-Line or Request-Line (read once per distinct line)."""
    found = _START_MEMO.get(line)
    if found is None:
        found = _read_start_line(line)
        if len(_START_MEMO) >= _LINE_MEMO_SIZE:
            _START_MEMO.clear()
        _START_MEMO[line] = found
    kind, method, status, reason = found
    if not kind:
        return None
    return LenientMessage(kind, line, method=method, status=status, reason=reason)


def _read_start_line(line: str) -> tuple[str, str | None, int | None, str | None]:
    """(kind, method, status, reason) of a start line; kind "" if it is none."""
    m = _STATUS_RE.match(line)
    if m is not None:
        return "response", None, int(m.group(1)), (m.group(2) or "").rstrip()
    m = _REQUEST_RE.match(line)
    if m is not None:
        return "request", m.group(1), None, None
    return "", None, None, None


def _name(raw: str) -> tuple[str, str]:
    """(canonical key, reported name) of a header name, cached."""
    found = _NAMES.get(raw)
    if found is None:
        name = raw.strip()
        key = canonical_name(name)
        found = (key, pretty_name(key) if key in _KNOWN else name)
        if len(_NAMES) < 2048:
            _NAMES[raw] = found
    return found


def _header_list(lines: list[str]) -> list[tuple[str, str]]:
    """``(name, value)`` per header line of ``lines`` (the start line first), folding undone."""
    headers: list[tuple[str, str]] = []
    for line in lines[1:]:
        if not line:
            continue
        if line[0] in " \t":
            if headers:
                name, value = headers[-1]
                cont = line.strip()
                headers[-1] = (name, f"{value} {cont}" if value else cont)
            continue
        raw, colon, value = line.partition(":")
        if not colon:
            continue
        headers.append((_name(raw)[1], value.strip()))
    return headers


def _wanted(headers: list[tuple[str, str]]) -> tuple[dict[str, Header], int]:
    """(value, :data:`_DERIVE` of it) of the first of each wanted header, and how many
    Via values there are."""
    first: dict[str, Header] = {}
    vias = 0
    for name, value in headers:
        key = _name(name)[0]
        if key in _WANTED:
            if key not in first:
                first[key] = value, _DERIVE[key](value)
            if key == "via":
                vias += _via_values(value)
    return first, vias


def _wanted_unfolded(lines: list[str]) -> tuple[dict[str, Header], int]:
    """:func:`_wanted` of ``_header_list(lines)`` when no line is a continuation: each
    line is one header on its own, read through :data:`_LINE_MEMO` (lines repeat byte
    for byte within a call)."""
    first: dict[str, Header] = {}
    vias = 0
    memo = _LINE_MEMO
    for line in lines[1:]:
        found = memo.get(line)
        if found is None:
            found = _wanted_line(line)
            if len(memo) >= _LINE_MEMO_SIZE:
                memo.clear()
            memo[line] = found
        key = found[0]
        if key:
            if key == "via":
                vias += found[2]
            if key not in first:
                first[key] = found[1]
    return first, vias


def _wanted_line(line: str) -> tuple[str, Header, int]:
    """(key, (stripped value, what correlation derives from it), Via values) of a wanted
    header line, else ("", ("", None), 0)."""
    raw, colon, value = line.partition(":")
    key = _name(raw)[0] if colon else ""
    if key not in _WANTED:
        return _UNWANTED
    value = value.strip()
    return key, (value, _DERIVE[key](value)), _via_values(value) if key == "via" else 0


def _via_values(value: str) -> int:
    """How many via-parms one Via header value holds (RFC 3261 §20.42)."""
    return len(split_list(value)) if '"' in value else value.count(",") + 1


def _correlation(msg: LenientMessage, first: dict[str, Header]) -> None:
    """Call-ID, CSeq, tags, top branch and media type from the first header values
    (derived once per distinct value, see :data:`_DERIVE`)."""
    get = first.get
    msg.call_id = get("call-id", _NONE)[1]
    cseq = get("cseq")
    if cseq is not None:
        msg.cseq, msg.cseq_method = cseq[1]
    if msg.kind == "response":
        msg.method = msg.cseq_method
    msg.from_tag = get("from", _NONE)[1]
    msg.to_tag = get("to", _NONE)[1]
    msg.branch = get("via", _NONE)[1]
    msg.content_type = get("content-type", _NONE)[1]


_NONE = ("", None)  # a header absent: no value, nothing derived


def _first(first: dict[str, Header], key: str):
    found = first.get(key)
    return found[1] if found is not None else None


def _cseq(value: str) -> tuple[int | None, str | None]:
    """(number, method) of a CSeq value, each None when absent or not a number."""
    parts = value.split()
    if not parts:
        return None, None
    number = int(parts[0]) if parts[0].isdigit() and parts[0].isascii() and len(parts[0]) <= 10 else None
    return number, parts[1] if len(parts) > 1 else None


def _branch(value: str) -> str | None:
    """``branch`` of the first via-parm (RFC 3261 §8.1.1.7)."""
    if not value:
        return None
    m = _BRANCH_RE.search(value.split(",", 1)[0])
    return m.group(1) if m else None


def _media_type(value: str) -> str | None:
    """type/subtype of a Content-Type value, lower case, without parameters."""
    return value.split(";", 1)[0].strip().lower() if value else None


def _tag(value: str | None) -> str | None:
    """``tag`` header parameter (RFC 3261 §19.3), ignoring a uri-parameter inside <>."""
    if not value:
        return None
    m = _TAG_RE.search(value, value.rfind(">") + 1)
    return m.group(1) if m else None


def _as_is(value: str) -> str:
    return value


#: What correlation takes from each wanted header's first value (pure: memoised per line).
_DERIVE = {"call-id": _as_is, "cseq": _cseq, "from": _tag, "to": _tag, "via": _branch,
           "content-type": _media_type, "content-length": _as_is}
