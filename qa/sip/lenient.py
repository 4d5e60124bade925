"""A forgiving, fast reading of a SIP message for call correlation (RFC 3261 §7).

:func:`read` runs on every SIP packet of a capture, including the ones the strict check
(:mod:`qa.sip.strict`) rejects, so that one bad header does not hide the call. It
pulls out what correlation needs (Call-ID, CSeq, tags, top branch, body) and nothing
else; it never raises and gives ``None`` only when there is no recognisable start line.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

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
    headers: list[tuple[str, str]] = field(default_factory=list)

    @property
    def is_request(self) -> bool:
        return self.kind == "request"


def read(data: bytes) -> LenientMessage | None:
    """Read one SIP message forgivingly; ``None`` if it has no SIP start line. Never raises."""
    try:
        return _read(data if isinstance(data, bytes) else bytes(data))
    except Exception:  # pragma: no cover - safety net for "never raises"; fuzzed
        return None


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
    first = _headers(lines, msg)
    _correlation(msg, first)
    body = data[body_start:]
    length = first.get("content-length", "").strip()
    if length.isdigit() and length.isascii() and int(length) < len(body):
        body = body[:int(length)]
    msg.body = body
    msg.body_offset = body_start
    return msg


def _start_line(line: str) -> LenientMessage | None:
    m = _STATUS_RE.match(line)
    if m is not None:
        return LenientMessage("response", line, status=int(m.group(1)), reason=(m.group(2) or "").rstrip())
    m = _REQUEST_RE.match(line)
    if m is not None:
        return LenientMessage("request", line, method=m.group(1))
    return None


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


def _headers(lines: list[str], msg: LenientMessage) -> dict[str, str]:
    """Fill ``msg.headers`` and ``via_count``; return the first value of each wanted header."""
    headers = msg.headers
    keys: list[str] = []
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
        key, name = _name(raw)
        keys.append(key)
        headers.append((name, value.strip()))
    first: dict[str, str] = {}
    vias = 0
    for key, (_, value) in zip(keys, headers):
        if key in _WANTED:
            if key not in first:
                first[key] = value
            if key == "via":
                vias += len(split_list(value)) if '"' in value else value.count(",") + 1
    msg.via_count = vias
    return first


def _correlation(msg: LenientMessage, first: dict[str, str]) -> None:
    """Call-ID, CSeq, tags, top branch and media type from the first header values."""
    msg.call_id = first.get("call-id")
    cseq = first.get("cseq")
    if cseq:
        parts = cseq.split()
        if parts[0].isdigit() and parts[0].isascii() and len(parts[0]) <= 10:
            msg.cseq = int(parts[0])
        if len(parts) > 1:
            msg.cseq_method = parts[1]
    if msg.kind == "response":
        msg.method = msg.cseq_method
    msg.from_tag = _tag(first.get("from"))
    msg.to_tag = _tag(first.get("to"))
    via = first.get("via")
    if via:
        m = _BRANCH_RE.search(via.split(",", 1)[0])
        msg.branch = m.group(1) if m else None
    ctype = first.get("content-type")
    if ctype:
        msg.content_type = ctype.split(";", 1)[0].strip().lower()


def _tag(value: str | None) -> str | None:
    """``tag`` header parameter (RFC 3261 §19.3), ignoring a uri-parameter inside <>."""
    if not value:
        return None
    m = _TAG_RE.search(value, value.rfind(">") + 1)
    return m.group(1) if m else None
