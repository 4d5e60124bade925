"""SDP session descriptions (RFC 8866 §5) as dataclasses; ``parse()`` and ``bytes()``.

Offsets in ``ParseError`` are byte offsets into the UTF-8 text.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import NoReturn

from qa.errors import ParseError

__all__ = ["Origin", "Connection", "Timing", "RtpMap", "MediaDescription",
           "SessionDescription", "STATIC_PAYLOAD_TYPES", "DIRECTIONS"]

Attribute = tuple[str, "str | None"]

#: RFC 8866 §6.7: media direction attributes.
DIRECTIONS = ("sendrecv", "sendonly", "recvonly", "inactive")

_TOKEN_RE = re.compile(r"[A-Za-z0-9!#$%&'*+\-.^_`{|}~]+\Z")  # RFC 8866 §9 token
_SESSION_ONLY = "vosuepzrt"   # letters that never appear inside a media section
_MEDIA_LETTERS = "ickba"      # RFC 8866 §5 media-level lines (plus m itself)
_OTHER_ORDER = "iuepzk"       # kept verbatim in `other`, re-emitted in this order


@dataclass(slots=True)
class RtpMap:
    """``a=rtpmap`` value (RFC 8866 §6.6): ``<encoding name>/<clock rate>[/<channels>]``."""

    encoding: str
    clock_rate: int
    channels: int = 1

    def __str__(self) -> str:
        tail = f"/{self.channels}" if self.channels != 1 else ""
        return f"{self.encoding}/{self.clock_rate}{tail}"


#: RFC 3551 §6 table 4/5: static payload types (used when no ``a=rtpmap`` is given).
STATIC_PAYLOAD_TYPES: dict[int, RtpMap] = {
    0: RtpMap("PCMU", 8000), 3: RtpMap("GSM", 8000), 4: RtpMap("G723", 8000),
    5: RtpMap("DVI4", 8000), 6: RtpMap("DVI4", 16000), 7: RtpMap("LPC", 8000),
    8: RtpMap("PCMA", 8000), 9: RtpMap("G722", 8000), 10: RtpMap("L16", 44100, 2),
    11: RtpMap("L16", 44100), 12: RtpMap("QCELP", 8000), 13: RtpMap("CN", 8000),
    14: RtpMap("MPA", 90000), 15: RtpMap("G728", 8000), 16: RtpMap("DVI4", 11025),
    17: RtpMap("DVI4", 22050), 18: RtpMap("G729", 8000), 25: RtpMap("CelB", 90000),
    26: RtpMap("JPEG", 90000), 28: RtpMap("nv", 90000), 31: RtpMap("H261", 90000),
    32: RtpMap("MPV", 90000), 33: RtpMap("MP2T", 90000), 34: RtpMap("H263", 90000),
}


def _int(text: str, what: str, pos: int, limit: int | None = None) -> int:
    if not text.isdigit() or not text.isascii():
        raise ParseError(f"{what} must be a number, got {text!r}", pos)
    value = int(text)
    if limit is not None and value > limit:
        raise ParseError(f"{what} {value} out of range", pos)
    return value


@dataclass(slots=True)
class Origin:
    """``o=<username> <sess-id> <sess-version> <nettype> <addrtype> <unicast-address>`` (RFC 8866 §5.2)."""

    username: str
    sess_id: int
    sess_version: int
    nettype: str = "IN"
    addrtype: str = "IP4"
    address: str = "0.0.0.0"

    @classmethod
    def parse(cls, text: str, pos: int = 0) -> Origin:
        parts = text.split(" ")
        if len(parts) != 6 or not all(parts):
            raise ParseError("o= needs 6 space-separated fields", pos)
        user, sid, ver, net, addrtype, addr = parts
        return cls(user, _int(sid, "sess-id", pos), _int(ver, "sess-version", pos),
                   net, addrtype, addr)

    def __str__(self) -> str:
        return (f"{self.username} {self.sess_id} {self.sess_version} {self.nettype} "
                f"{self.addrtype} {self.address}")


@dataclass(slots=True)
class Connection:
    """``c=<nettype> <addrtype> <connection-address>`` (RFC 8866 §5.7).

    ``address`` keeps any multicast ``/ttl/count`` suffix.
    """

    nettype: str = "IN"
    addrtype: str = "IP4"
    address: str = "0.0.0.0"

    @classmethod
    def parse(cls, text: str, pos: int = 0) -> Connection:
        parts = text.split(" ")
        if len(parts) != 3 or not all(parts):
            raise ParseError("c= needs 3 space-separated fields", pos)
        return cls(*parts)

    @classmethod
    def for_address(cls, address: str) -> Connection:
        """``IN IP4 a`` or ``IN IP6 a`` depending on the address."""
        return cls("IN", "IP6" if ":" in address else "IP4", address)

    def __str__(self) -> str:
        return f"{self.nettype} {self.addrtype} {self.address}"


@dataclass(slots=True)
class Timing:
    """``t=<start-time> <stop-time>`` plus its ``r=`` lines (RFC 8866 §5.9, §5.10)."""

    start: int = 0
    stop: int = 0
    repeats: list[str] = field(default_factory=list)


def _parse_bandwidth(text: str, pos: int) -> tuple[str, int]:
    bwtype, colon, value = text.partition(":")
    if not colon or not _TOKEN_RE.match(bwtype):
        raise ParseError("b= must be <bwtype>:<bandwidth>", pos)
    return bwtype, _int(value, "bandwidth", pos)


def _parse_attribute(text: str, pos: int) -> Attribute:
    name, colon, value = text.partition(":")
    if not _TOKEN_RE.match(name):
        raise ParseError(f"bad attribute name {name!r}", pos)
    if name in ("rtpmap", "fmtp") and not colon:
        raise ParseError(f"a={name} without a value", pos)
    if name == "rtpmap":
        _parse_rtpmap(value, pos)
    elif name == "fmtp":
        fmt = value.split(" ", 1)[0]
        if not _TOKEN_RE.match(fmt):
            raise ParseError(f"bad a=fmtp format {fmt!r}", pos)
    return (name, value if colon else None)


def _parse_rtpmap(value: str, pos: int = 0) -> tuple[int, RtpMap]:
    pt, _, enc = value.partition(" ")
    parts = enc.strip().split("/")
    if len(parts) not in (2, 3) or not parts[0]:
        raise ParseError(f"bad a=rtpmap {value!r}", pos)
    channels = _int(parts[2], "rtpmap channels", pos, 255) if len(parts) == 3 else 1
    return (_int(pt, "rtpmap payload type", pos, 127),
            RtpMap(parts[0], _int(parts[1], "rtpmap clock rate", pos, 10**9), channels))


def _attr_lines(attributes: list[Attribute]) -> list[str]:
    return [f"a={n}" if v is None else f"a={n}:{v}" for n, v in attributes]


@dataclass
class MediaDescription:
    """One media section (RFC 8866 §5.14): ``m=<media> <port> <proto> <fmt> ...`` and its lines."""

    media: str
    port: int
    proto: str
    formats: list[str]
    connection: Connection | None = None
    attributes: list[Attribute] = field(default_factory=list)
    bandwidths: list[tuple[str, int]] = field(default_factory=list)
    port_count: int | None = None
    other: list[tuple[str, str]] = field(default_factory=list)  # i=, k= lines

    @classmethod
    def parse_m_line(cls, text: str, pos: int = 0) -> MediaDescription:
        parts = text.split(" ")
        if len(parts) < 4 or not all(parts):
            raise ParseError("m= needs <media> <port> <proto> <fmt> ...", pos)
        media, port_text, proto, *formats = parts
        port_text, slash, count = port_text.partition("/")
        port = _int(port_text, "m= port", pos, 65535)
        port_count = _int(count, "m= number of ports", pos) if slash else None
        return cls(media, port, proto, formats, port_count=port_count)

    def attribute(self, name: str) -> str | None:
        """Value of the first ``a=name`` ('' for a flag), or ``None`` if absent."""
        for n, v in self.attributes:
            if n == name:
                return "" if v is None else v
        return None

    def attributes_named(self, name: str) -> list[str]:
        """Values of every ``a=name`` line."""
        return ["" if v is None else v for n, v in self.attributes if n == name]

    @property
    def rtpmap(self) -> dict[int, RtpMap]:
        """Payload type -> mapping for this section's formats: ``a=rtpmap`` (RFC 8866 §6.6)
        or the RFC 3551 §6 static table."""
        explicit: dict[int, RtpMap] = {}
        for value in self.attributes_named("rtpmap"):
            try:
                pt, mapping = _parse_rtpmap(value)
            except ParseError:
                continue  # only possible for hand-built attributes; parse() checks them
            explicit[pt] = mapping
        out: dict[int, RtpMap] = {}
        for fmt in self.formats:
            if fmt.isdigit() and fmt.isascii():
                pt = int(fmt)
                known = explicit.get(pt) or STATIC_PAYLOAD_TYPES.get(pt)
                if known is not None:
                    out[pt] = known
        return out

    @property
    def fmtp(self) -> dict[int, str]:
        """Payload type -> ``a=fmtp`` parameters (RFC 8866 §6.15)."""
        out: dict[int, str] = {}
        for value in self.attributes_named("fmtp"):
            fmt, _, params = value.partition(" ")
            if fmt.isdigit() and fmt.isascii():
                out[int(fmt)] = params.strip()
        return out

    @property
    def direction(self) -> str:
        """Media-level direction attribute (RFC 8866 §6.7); ``sendrecv`` when absent.

        See :meth:`SessionDescription.direction_of` for the session-level fallback.
        """
        return self._direction() or "sendrecv"

    def _direction(self) -> str | None:
        found = None
        for name, _ in self.attributes:
            if name in DIRECTIONS:
                found = name
        return found

    @property
    def ptime(self) -> int | None:
        """``a=ptime`` in milliseconds (RFC 8866 §6.4), or ``None``."""
        value = self.attribute("ptime")
        try:
            return int(float(value)) if value else None
        except ValueError:
            return None

    def codec_names(self) -> list[str]:
        """Encoding names in format order, e.g. ``["PCMU", "PCMA", "telephone-event"]``."""
        rtpmap = self.rtpmap
        return [rtpmap[int(f)].encoding if f.isdigit() and f.isascii() and int(f) in rtpmap
                else f for f in self.formats]

    def lines(self) -> list[str]:
        port = self.port if self.port_count is None else f"{self.port}/{self.port_count}"
        out = [f"m={self.media} {port} {self.proto} {' '.join(self.formats)}"]
        out += [f"i={v}" for k, v in self.other if k == "i"]
        if self.connection is not None:
            out.append(f"c={self.connection}")
        out += [f"b={t}:{v}" for t, v in self.bandwidths]
        out += [f"k={v}" for k, v in self.other if k == "k"]
        return out + _attr_lines(self.attributes)


@dataclass
class SessionDescription:
    """A whole SDP body (RFC 8866 §5).

    ``other`` keeps the i=, u=, e=, p=, z=, k= session lines verbatim.
    """

    version: int = 0
    origin: Origin = field(default_factory=lambda: Origin("-", 0, 0))
    session_name: str = "-"
    connection: Connection | None = None
    timing: list[Timing] = field(default_factory=lambda: [Timing()])
    bandwidths: list[tuple[str, int]] = field(default_factory=list)
    attributes: list[Attribute] = field(default_factory=list)
    media: list[MediaDescription] = field(default_factory=list)
    other: list[tuple[str, str]] = field(default_factory=list)

    @classmethod
    def parse(cls, data: bytes | str) -> SessionDescription:
        """Parse an SDP body (RFC 8866 §5, §9 grammar); CRLF or LF line ends.

        Raises ``ParseError`` on a line that is not ``<letter>=<value>``, a missing or
        misplaced v=/o=/s=/t= line, an unknown type letter (§5 allows rejecting), a
        session-only line inside a media section, or malformed o=/c=/b=/t=/m=/rtpmap.
        """
        return _Parser(data).run()

    def __bytes__(self) -> bytes:
        return ("\r\n".join(self.lines()) + "\r\n").encode("utf-8", "surrogateescape")

    def __str__(self) -> str:
        return bytes(self).decode("utf-8", "surrogateescape")

    def lines(self) -> list[str]:
        out = [f"v={self.version}", f"o={self.origin}", f"s={self.session_name}"]
        out += [f"{k}={v}" for k in "iuep" for kk, v in self.other if kk == k]
        if self.connection is not None:
            out.append(f"c={self.connection}")
        out += [f"b={t}:{v}" for t, v in self.bandwidths]
        for t in self.timing:
            out.append(f"t={t.start} {t.stop}")
            out += [f"r={r}" for r in t.repeats]
        out += [f"{k}={v}" for k in "zk" for kk, v in self.other if kk == k]
        out += _attr_lines(self.attributes)
        for m in self.media:
            out += m.lines()
        return out

    def attribute(self, name: str) -> str | None:
        """Value of the first session-level ``a=name`` ('' for a flag), or ``None``."""
        for n, v in self.attributes:
            if n == name:
                return "" if v is None else v
        return None

    @property
    def audio(self) -> MediaDescription | None:
        """The first ``m=audio`` section, or ``None``."""
        return next((m for m in self.media if m.media == "audio"), None)

    def address_of(self, media: MediaDescription) -> str | None:
        """Connection address for ``media``: its own c= or the session's (RFC 8866 §5.7)."""
        conn = media.connection or self.connection
        return conn.address.split("/", 1)[0] if conn else None

    def direction_of(self, media: MediaDescription) -> str:
        """Direction of ``media``: media level, else session level, else sendrecv (§6.7)."""
        found = media._direction()
        if found:
            return found
        for name, _ in self.attributes:
            if name in DIRECTIONS:
                found = name
        return found or "sendrecv"


class _Parser:
    """Line-by-line state machine over RFC 8866 §5's fixed line order."""

    def __init__(self, data: bytes | str) -> None:
        if isinstance(data, str):
            self.text = data
        else:
            self.text = bytes(data).decode("utf-8", "surrogateescape")

    def err(self, reason: str, pos: int) -> NoReturn:
        raise ParseError(reason, len(self.text[:pos].encode("utf-8", "surrogateescape")))

    def run(self) -> SessionDescription:
        text = self.text
        if not text.strip():
            self.err("empty session description", 0)
        sdp = SessionDescription(timing=[])
        media: MediaDescription | None = None
        seen_t = False
        pos = 0
        index = 0
        # Sub-parsers raise ParseError with *character* offsets; converted once below.
        for raw in text.rstrip("\r\n").split("\n"):
            line_pos = pos
            pos += len(raw) + 1
            line = raw[:-1] if raw.endswith("\r") else raw
            if len(line) < 2 or line[1] != "=" or not ("a" <= line[0] <= "z"):
                self.err("empty line" if not line else "line is not '<type>=<value>'", line_pos)
            kind, value = line[0], line[2:]
            if index < 3 and kind != "vos"[index]:
                self.err(f"expected {'vos'[index]}= line (RFC 8866 §5)", line_pos)
            if index >= 3 and kind in "vos":
                self.err(f"repeated {kind}= line", line_pos)
            index += 1
            try:
                if media is None:
                    seen_t = self.session_line(sdp, kind, value, line_pos, seen_t)
                    if kind == "m":
                        media = sdp.media[-1]
                elif kind == "m":
                    media = MediaDescription.parse_m_line(value, line_pos)
                    sdp.media.append(media)
                else:
                    self.media_line(media, kind, value, line_pos)
            except ParseError as exc:
                self.err(exc.reason, exc.offset)
        if index < 3:
            self.err("missing v=, o= or s= line", len(text))
        if not seen_t:
            self.err("missing t= line (RFC 8866 §5.9)", len(text))
        return sdp

    def session_line(self, sdp: SessionDescription, kind: str, value: str, pos: int,
                     seen_t: bool) -> bool:
        if kind == "v":
            if value != "0":
                _fail(f"unsupported SDP version {value!r}", pos)
        elif kind == "o":
            sdp.origin = Origin.parse(value, pos)
        elif kind == "s":
            sdp.session_name = value
        elif kind == "c":
            if sdp.connection is not None:
                _fail("more than one session-level c= line", pos)
            sdp.connection = Connection.parse(value, pos)
        elif kind == "b":
            sdp.bandwidths.append(_parse_bandwidth(value, pos))
        elif kind == "t":
            start, _, stop = value.partition(" ")
            sdp.timing.append(Timing(_int(start, "start-time", pos), _int(stop, "stop-time", pos)))
            return True
        elif kind == "r":
            if not seen_t:
                _fail("r= before t=", pos)
            sdp.timing[-1].repeats.append(value)
        elif kind == "a":
            sdp.attributes.append(_parse_attribute(value, pos))
        elif kind == "m":
            if not seen_t:
                _fail("m= before any t= line (RFC 8866 §5)", pos)
            sdp.media.append(MediaDescription.parse_m_line(value, pos))
        elif kind in _OTHER_ORDER:
            sdp.other.append((kind, value))
        else:
            _fail(f"unknown SDP line type {kind!r}", pos)
        return seen_t

    def media_line(self, media: MediaDescription, kind: str, value: str, pos: int) -> None:
        if kind == "a":
            media.attributes.append(_parse_attribute(value, pos))
        elif kind == "c":
            conn = Connection.parse(value, pos)
            if media.connection is None:
                media.connection = conn
        elif kind == "b":
            media.bandwidths.append(_parse_bandwidth(value, pos))
        elif kind in "ik":
            media.other.append((kind, value))
        elif kind in _SESSION_ONLY:
            _fail(f"{kind}= line inside a media section (RFC 8866 §5)", pos)
        else:
            _fail(f"unknown SDP line type {kind!r}", pos)


def _fail(reason: str, pos: int) -> NoReturn:
    raise ParseError(reason, pos)
