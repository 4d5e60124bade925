"""SIP messages: framing, parsing and serialisation (RFC 3261 §7, §18.3).

``parse_message`` turns one datagram (or one frame from :class:`StreamFramer`) into a
:class:`Request` or :class:`Response`. Header values stay strings and are only parsed
further when a property asks for them (``cseq``, ``top_via``, ...), which keeps a
pass over a large capture cheap.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import NoReturn

from qa.errors import ParseError
from qa.sip.fields import NameAddr, Via, parse_cseq, parse_name_addr, parse_via
from qa.sip.headers import Headers, canonical_name, pretty_name
from qa.sip.uri import SipUri, is_token, parse_uri

__all__ = ["Request", "Response", "Message", "parse_message", "StreamFramer",
           "MANDATORY_HEADERS", "SIP_VERSION"]

SIP_VERSION = "SIP/2.0"
#: Headers every request and response must carry (RFC 3261 §8.1.1, §20 table 2).
MANDATORY_HEADERS = ("via", "from", "to", "call-id", "cseq")
# Single-valued headers that may appear at most once (RFC 3261 §7.3.1, §20).
_SINGLE = ("from", "to", "call-id", "cseq")
_SCHEME_RE = re.compile(r"[A-Za-z][A-Za-z0-9+\-.]*:")


class _MessageMixin:
    """Convenience accessors shared by :class:`Request` and :class:`Response`."""

    headers: Headers
    body: bytes

    @property
    def call_id(self) -> str | None:
        """The ``Call-ID`` value (RFC 3261 §20.8)."""
        return self.headers.get("call-id")

    @property
    def cseq(self) -> tuple[int, str]:
        """``(sequence number, method)`` from ``CSeq`` (RFC 3261 §20.16)."""
        value = self.headers.get("cseq")
        if value is None:
            raise ParseError("no CSeq header", 0)
        return parse_cseq(value)

    @property
    def from_addr(self) -> NameAddr:
        """Parsed ``From`` (RFC 3261 §20.20)."""
        return _name_addr(self.headers, "from")

    @property
    def to_addr(self) -> NameAddr:
        """Parsed ``To`` (RFC 3261 §20.39)."""
        return _name_addr(self.headers, "to")

    @property
    def from_tag(self) -> str | None:
        """``tag`` of ``From`` (RFC 3261 §19.3)."""
        return self.from_addr.tag

    @property
    def to_tag(self) -> str | None:
        """``tag`` of ``To`` (RFC 3261 §19.3); ``None`` outside a dialog."""
        return self.to_addr.tag

    @property
    def top_via(self) -> Via:
        """The first ``via-parm`` (RFC 3261 §20.42)."""
        value = self.headers.get("via")
        if value is None:
            raise ParseError("no Via header", 0)
        return parse_via(value)

    @property
    def vias(self) -> list[Via]:
        """Every ``via-parm`` in order."""
        return [parse_via(v) for v in self.headers.get_all("via")]

    @property
    def contacts(self) -> list[NameAddr]:
        """Every ``Contact`` value (RFC 3261 §20.10)."""
        return [parse_name_addr(v) for v in self.headers.get_all("contact")]

    @property
    def content_type(self) -> str | None:
        """``Content-Type`` media type, lower-cased, without parameters (RFC 3261 §20.15)."""
        value = self.headers.get("content-type")
        return value.split(";", 1)[0].strip().lower() if value else None


def _name_addr(headers: Headers, name: str) -> NameAddr:
    value = headers.get(name)
    if value is None:
        raise ParseError(f"no {pretty_name(name)} header", 0)
    return parse_name_addr(value)


def _serialise(start: str, headers: Headers, body: bytes) -> bytes:
    """Start line, headers with a recomputed Content-Length, CRLF, body (RFC 3261 §7)."""
    out = [start]
    length_done = False
    for key, name, value in headers._items:
        if key == "content-length":
            if length_done:
                continue
            value = str(len(body))
            length_done = True
        out.append(f"{name}: {value}")
    if not length_done:
        out.append(f"Content-Length: {len(body)}")
    out.append("\r\n")
    return "\r\n".join(out).encode("utf-8", "surrogateescape") + body


@dataclass(eq=True)
class Request(_MessageMixin):
    """A SIP request (RFC 3261 §7.1): ``Method SP Request-URI SP SIP-Version``."""

    method: str
    uri: str
    headers: Headers = field(default_factory=Headers)
    body: bytes = b""
    version: str = SIP_VERSION

    def __post_init__(self) -> None:
        if not isinstance(self.headers, Headers):
            self.headers = Headers(self.headers)

    def __bytes__(self) -> bytes:
        return _serialise(f"{self.method} {self.uri} {self.version}", self.headers, self.body)

    @property
    def request_uri(self) -> SipUri:
        """The Request-URI parsed as a SIP URI (``ParseError`` for other schemes)."""
        return parse_uri(self.uri)

    is_request = True


@dataclass(eq=True)
class Response(_MessageMixin):
    """A SIP response (RFC 3261 §7.2): ``SIP-Version SP Status-Code SP Reason-Phrase``."""

    status: int
    reason: str
    headers: Headers = field(default_factory=Headers)
    body: bytes = b""
    version: str = SIP_VERSION

    def __post_init__(self) -> None:
        if not isinstance(self.headers, Headers):
            self.headers = Headers(self.headers)

    def __bytes__(self) -> bytes:
        return _serialise(f"{self.version} {self.status} {self.reason}", self.headers, self.body)

    is_request = False

    @property
    def method(self) -> str:
        """The method this response answers, from ``CSeq`` (RFC 3261 §8.2.6.2)."""
        return self.cseq[1]

    @property
    def is_provisional(self) -> bool:
        """1xx (RFC 3261 §7.2)."""
        return self.status < 200

    @property
    def is_final(self) -> bool:
        """2xx-6xx (RFC 3261 §7.2)."""
        return self.status >= 200

    @property
    def is_success(self) -> bool:
        """2xx."""
        return 200 <= self.status < 300

    @property
    def is_error(self) -> bool:
        """4xx, 5xx or 6xx."""
        return self.status >= 400


Message = Request | Response


def _byte_offset(text: str, pos: int, base: int) -> int:
    """Byte offset of character ``pos`` in the decoded header section (computed lazily)."""
    return base + len(text[:pos].encode("utf-8", "surrogateescape"))


def _find_header_end(data: bytes | bytearray, start: int) -> tuple[int, int]:
    """(end of header section, start of body); ``(-1, -1)`` if there is no empty line."""
    crlf = data.find(b"\r\n\r\n", start)
    lf = data.find(b"\n\n", start)
    if lf >= 0 and (crlf < 0 or lf < crlf):
        return lf, lf + 2
    if crlf >= 0:
        return crlf, crlf + 4
    return -1, -1


def _parse_start_line(line: str, err) -> Request | Response:
    if line[:4].upper() == "SIP/":
        parts = line.split(" ", 2)
        if parts[0].upper() != SIP_VERSION:
            err(f"unsupported SIP version {parts[0]!r}", 0)
        if len(parts) < 2:
            err("status line without status code", len(line))
        code = parts[1]
        if len(code) != 3 or not code.isdigit() or not code.isascii() or code[0] not in "123456":
            err(f"bad status code {code!r}", len(parts[0]) + 1)
        return Response(int(code), parts[2] if len(parts) == 3 else "", Headers(), b"", parts[0])
    parts = line.split(" ")
    if len(parts) != 3 or not all(parts):
        err("malformed Request-Line: expected 'Method SP Request-URI SP SIP-Version'", 0)
    method, uri, version = parts
    if not is_token(method):
        err(f"bad method {method!r}", 0)
    if not _SCHEME_RE.match(uri) or any(c in uri for c in "<>\""):
        err(f"bad Request-URI {uri!r}", len(method) + 1)
    if version.upper() != SIP_VERSION:
        if version[:4].upper() == "SIP/":
            err(f"unsupported SIP version {version!r}", len(method) + len(uri) + 2)
        err(f"malformed SIP-Version {version!r}", len(method) + len(uri) + 2)
    return Request(method, uri, Headers(), b"", version)


def parse_message(data: bytes | bytearray | memoryview | str) -> Request | Response:
    """Parse one SIP message (RFC 3261 §7).

    Leading CRLFs are skipped (§7.5). Lines may end in CRLF or bare LF; folded header
    lines are joined with one SP (§7.3.1). With ``Content-Length`` the body is cut to
    that length (trailing octets ignored, §18.3) and a shorter body is an error;
    without it the rest of the datagram is the body. Raises ``ParseError`` with the
    byte offset of the problem for anything that does not follow the grammar.
    """
    if isinstance(data, str):
        data = data.encode("utf-8", "surrogateescape")
    elif not isinstance(data, bytes):
        data = bytes(data)
    start = 0
    n = len(data)
    while start < n and data[start] in (13, 10):
        start += 1
    if start >= n:
        raise ParseError("empty message", start)
    end, body_start = _find_header_end(data, start)
    if end < 0:
        raise ParseError("no empty line after the header section", n)
    head = data[start:end].decode("utf-8", "surrogateescape")

    def err(reason: str, pos: int) -> NoReturn:
        raise ParseError(reason, _byte_offset(head, pos, start))

    nl = head.find("\n")
    first = head if nl < 0 else head[:nl]
    if first.endswith("\r"):
        first = first[:-1]
    msg = _parse_start_line(first, err)
    items = msg.headers._items
    positions: dict[str, int] = {}
    counts: dict[str, int] = {}
    pos = len(head) if nl < 0 else nl + 1
    for line in head[pos:].split("\n") if nl >= 0 else ():
        line_pos = pos
        pos += len(line) + 1
        if line.endswith("\r"):
            line = line[:-1]
        if line[:1] in (" ", "\t"):
            if not items:
                err("continuation line before the first header", line_pos)
            key, name, value = items[-1]
            cont = line.strip(" \t")
            items[-1] = (key, name, f"{value} {cont}" if value else cont)
            continue
        colon = line.find(":")
        if colon <= 0:
            err("header line without colon" if colon < 0 else "empty header name", line_pos)
        name = line[:colon].rstrip(" \t")
        if not is_token(name):
            err(f"bad header name {name!r}", line_pos)
        key = canonical_name(name)
        items.append((key, name, line[colon + 1:].strip(" \t")))
        if key not in positions:
            positions[key] = line_pos
        counts[key] = counts.get(key, 0) + 1
    for key in MANDATORY_HEADERS:
        if key not in positions:
            err(f"missing mandatory header {pretty_name(key)}", len(head))
    for key in _SINGLE:
        if counts[key] > 1:
            err(f"more than one {pretty_name(key)} header", positions[key])
    headers = msg.headers
    try:
        _, cseq_method = parse_cseq(headers.get("cseq") or "")
    except ParseError as exc:
        err(f"bad CSeq: {exc.reason}", positions["cseq"])
    if isinstance(msg, Request) and cseq_method != msg.method:
        err(f"CSeq method {cseq_method!r} does not match {msg.method!r} (RFC 3261 §8.1.1.5)",
            positions["cseq"])
    body = data[body_start:]
    if "content-length" in positions:
        lengths = set(headers.lines("content-length"))
        if len(lengths) != 1:
            err("conflicting Content-Length headers", positions["content-length"])
        value = lengths.pop()
        if not value.isdigit() or not value.isascii():
            err(f"bad Content-Length {value!r}", positions["content-length"])
        length = int(value)
        if length > len(body):
            raise ParseError(f"body has {len(body)} octets, Content-Length says {length}", n)
        body = body[:length]
    msg.body = body
    return msg


_CL_RE = re.compile(rb"(?im)^(?:content-length|l)[ \t]*:[ \t]*([^\r\n]*?)[ \t]*\r?$")


class StreamFramer:
    """Split a stream transport's bytes into SIP messages (RFC 3261 §18.3).

    ``feed`` returns every complete message (several per segment, or one spanning
    segments); CRLF keep-alives between messages (RFC 5626 §3.5.1) are dropped.
    ``Content-Length`` is mandatory on streams. After a ``ParseError`` the stream is
    unusable and the connection should be closed (§18.3).
    """

    def __init__(self, max_message: int = 65536) -> None:
        self.max_message = max_message
        self._buf = bytearray()
        self._consumed = 0  # stream offset of _buf[0]

    def feed(self, data: bytes) -> list[bytes]:
        """Add received bytes; return the messages now complete, in order."""
        buf = self._buf
        buf += data
        out: list[bytes] = []
        while True:
            skip = 0
            while skip < len(buf) and buf[skip] in (13, 10):
                skip += 1
            if skip:
                del buf[:skip]
                self._consumed += skip
            if not buf:
                break
            end, body_start = _find_header_end(buf, 0)
            if end < 0:
                if len(buf) > self.max_message:
                    raise ParseError(f"header section over {self.max_message} octets",
                                     self._consumed + len(buf))
                break
            if body_start > self.max_message:
                raise ParseError(f"header section over {self.max_message} octets",
                                 self._consumed + body_start)
            m = _CL_RE.search(buf, 0, end + 2)
            if m is None:
                raise ParseError("no Content-Length on a stream transport (RFC 3261 §18.3)",
                                 self._consumed + end)
            value = m.group(1)
            if not value.isdigit():
                raise ParseError(f"bad Content-Length {value!r}", self._consumed + m.start(1))
            total = body_start + int(value)
            if total > self.max_message:
                raise ParseError(f"message of {total} octets over {self.max_message}",
                                 self._consumed + m.start(1))
            if len(buf) < total:
                break
            out.append(bytes(buf[:total]))
            del buf[:total]
            self._consumed += total
        return out

    @property
    def buffered(self) -> int:
        """Octets held waiting for the rest of a message."""
        return len(self._buf)
