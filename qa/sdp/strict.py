"""Strict check of an SDP body (RFC 8866 / RFC 4566, RFC 3264, RFC 4733): every problem.

``check_sdp(data)`` never raises; it returns a :class:`qa.errors.Problem` per deviation
with a stable ``rule`` id and the byte offset *within the body* (the SIP analyzer adds
the body's offset in the message). ``error`` is what RFC 8866 says makes the
description unusable; ``warning`` is legal but questionable.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field

from qa.errors import Problem
from qa.sdp.model import STATIC_PAYLOAD_TYPES

__all__ = ["RULES", "check_sdp"]

#: Every rule id ``check_sdp`` can report, with what it means.
RULES: dict[str, str] = {
    "sdp.syntax": "line is not <type>=<value>, or a field does not follow RFC 8866 §9",
    "sdp.version": "v= other than 0 (RFC 8866 §5.1)",
    "sdp.origin": "malformed o= (RFC 8866 §5.2)",
    "sdp.session-name": "empty s= (RFC 8866 §5.3)",
    "sdp.connection": "malformed c=, or address not of its addrtype (RFC 8866 §5.7)",
    "sdp.connection.missing": "neither a session c= nor one in every m= (RFC 8866 §5.7)",
    "sdp.line.missing": "a mandatory v=/o=/s=/t= line is absent (RFC 8866 §5)",
    "sdp.line.order": "line out of the RFC 8866 §5 order, or not allowed where it is",
    "sdp.line.duplicate": "a line that may appear once appears again (RFC 8866 §5)",
    "sdp.line.unknown": "unknown type letter: the description must be ignored (RFC 8866 §5)",
    "sdp.media": "malformed m= (media, port, proto, formats) (RFC 8866 §5.14)",
    "sdp.payload.duplicate": "a payload type listed or mapped twice (RFC 8866 §5.14, §6.6)",
    "sdp.rtpmap.syntax": "malformed a=rtpmap (RFC 8866 §6.6)",
    "sdp.rtpmap.missing": "payload type without static assignment and without a=rtpmap (RFC 8866 §6.6, RFC 3551 §6)",
    "sdp.rtpmap.unused": "a=rtpmap for a payload type not on the m= line (RFC 8866 §6.6)",
    "sdp.fmtp.syntax": "malformed a=fmtp (RFC 8866 §6.15)",
    "sdp.fmtp.unknown-pt": "a=fmtp for a format not on the m= line (RFC 8866 §6.15)",
    "sdp.telephone-event": "telephone-event clock rate or event list (RFC 4733 §7.1.1)",
    "sdp.attribute.syntax": "attribute name is not a token (RFC 8866 §5.13)",
    "sdp.internal": "the checker itself failed (a bug; never expected)",
}

_SESSION_ORDER = {k: i for i, k in enumerate("vosiuepcbtrzka")}
_MEDIA_ORDER = {k: i for i, k in enumerate("micbka")}
_SESSION_REPEAT = frozenset("epbtra")
_MEDIA_REPEAT = frozenset("cba")
_TOKEN = r"[A-Za-z0-9!#$%&'*+\-.^_`{|}~]+"
_RE_TOKEN = re.compile(_TOKEN)
_RE_DIGITS = re.compile("[0-9]+")
_RE_ORIGIN = re.compile(rf"(\S+) ([0-9]+) ([0-9]+) ({_TOKEN}) ({_TOKEN}) (\S+)")
_RE_CONNECTION = re.compile(rf"({_TOKEN}) ({_TOKEN}) ([^ /]+)((?:/[0-9]+){{0,2}})")
_RE_BANDWIDTH = re.compile(rf"{_TOKEN}:[0-9]+")
_RE_TIMING = re.compile("[0-9]+ [0-9]+")
_RE_MEDIA = re.compile(rf"({_TOKEN}) ([0-9]+)(?:/([0-9]+))? ({_TOKEN}(?:/{_TOKEN})*)((?: {_TOKEN})+)")
_RE_ATTRIBUTE = re.compile(rf"({_TOKEN})(?::(.*))?", re.S)
_RE_RTPMAP = re.compile(r"([0-9]{1,3}) ([^/ ]+)/([0-9]+)(?:/([0-9]+))?")
_RE_FMTP = re.compile(r"(\S+) (\S.*)")
_RE_EVENTS = re.compile(r"[0-9]{1,3}(?:-[0-9]{1,3})?(?:,[0-9]{1,3}(?:-[0-9]{1,3})?)*")
_RE_IP4 = re.compile(r"(?:25[0-5]|2[0-4][0-9]|[01]?[0-9]?[0-9])(?:\.(?:25[0-5]|2[0-4][0-9]|[01]?[0-9]?[0-9])){3}")
_RE_FQDN = re.compile(r"(?=.*[A-Za-z])[A-Za-z0-9](?:[A-Za-z0-9\-.]*[A-Za-z0-9])?\.?")
_RTP = "RTP/"


@dataclass
class _Media:
    """What the checks after the last line need to know about one m= section."""

    offset: int
    proto: str
    formats: list[str]
    has_connection: bool = False
    rtpmap: dict[int, tuple[str, int, int]] = field(default_factory=dict)  # pt -> (enc, rate, off)
    fmtp: list[tuple[str, str, int]] = field(default_factory=list)  # (format, params, offset)

    @property
    def is_rtp(self) -> bool:
        return _RTP in self.proto.upper()


class _Checker:
    """One pass over the lines, then the cross-line rules."""

    def __init__(self, data: bytes) -> None:
        self.text = data.decode("latin-1")
        self.problems: list[Problem] = []
        self.media: list[_Media] = []
        self.session_connection = False
        self.seen: set[str] = set()

    def err(self, offset: int, rule: str, reason: str) -> None:
        self.problems.append(Problem(offset, rule, reason))

    def warn(self, offset: int, rule: str, reason: str) -> None:
        self.problems.append(Problem(offset, rule, reason, "warning"))

    def run(self) -> list[Problem]:
        text = self.text
        if not text.strip():
            self.err(0, "sdp.line.missing", "empty session description (RFC 8866 §5)")
            return self.problems
        body = text.rstrip("\r\n")
        tail = text[len(body):]
        if tail not in ("\r\n", "\n"):
            self.warn(len(body), "sdp.syntax", "blank line(s) after the last SDP line (RFC 8866 §5)"
                      if tail.count("\n") > 1 else "last SDP line does not end in CRLF (RFC 8866 §5)")
        pos = 0
        last = -1
        for raw in body.split("\n"):
            off = pos
            pos += len(raw) + 1
            line = raw[:-1] if raw[-1:] == "\r" else raw
            last = self.line(line, off, last)
        self.finish(len(text))
        self.problems.sort(key=lambda p: p.offset)
        return self.problems

    # -- one line --------------------------------------------------------------------
    def line(self, line: str, off: int, last: int) -> int:
        """Check one line; return the order rank reached (RFC 8866 §5)."""
        if len(line) < 2 or line[1] != "=" or not ("a" <= line[0] <= "z"):
            self.err(off, "sdp.syntax", "empty line" if not line else
                     f"line {line[:20]!r} is not '<type>=<value>' (RFC 8866 §5: no space around '=')")
            return last
        kind, value = line[0], line[2:]
        if not self.seen and kind != "v":
            self.err(off, "sdp.line.missing", "the first line must be v= (RFC 8866 §5.1)")
        last = self.order(kind, off, last)
        self.seen.add(kind)
        check = _LINE_CHECKS.get(kind)
        if check is not None:
            check(self, value, off + 2)
        return last

    def order(self, kind: str, off: int, last: int) -> int:
        if kind == "m":
            if "t" not in self.seen:
                self.err(off, "sdp.line.order", "m= before any t= line (RFC 8866 §5)")
            return 0
        table, repeat = (_MEDIA_ORDER, _MEDIA_REPEAT) if self.media else (_SESSION_ORDER, _SESSION_REPEAT)
        rank = table.get(kind)
        if rank is None:
            if kind in _SESSION_ORDER:
                self.err(off, "sdp.line.order", f"{kind}= is not allowed in a media description (RFC 8866 §5)")
            else:
                self.err(off, "sdp.line.unknown",
                         f"unknown SDP line type {kind!r}: the description must be ignored (RFC 8866 §5)")
            return last
        if rank == last and kind not in repeat:
            self.err(off, "sdp.line.duplicate", f"more than one {kind}= line here (RFC 8866 §5)")
        elif rank < last and not (kind == "t" and last == _SESSION_ORDER["r"] and not self.media):
            self.err(off, "sdp.line.order",
                     f"{kind}= out of order: RFC 8866 §5 wants "
                     f"{'m i c b k a' if self.media else 'v o s i u e p c b t r z k a'}")
        return max(rank, last)

    # -- after the last line ---------------------------------------------------------
    def finish(self, end: int) -> None:
        for kind, what in (("v", "v="), ("o", "o="), ("s", "s="), ("t", "t=")):
            if kind not in self.seen:
                self.err(end, "sdp.line.missing", f"missing {what} line (RFC 8866 §5)")
        for media in self.media:
            if not (media.has_connection or self.session_connection):
                self.err(media.offset, "sdp.connection.missing",
                         "no c= in this m= section and none at session level (RFC 8866 §5.7)")
            self.payload_types(media)
            self.formats_params(media)

    def payload_types(self, media: _Media) -> None:
        """Formats of an RTP m= line vs a=rtpmap (RFC 8866 §5.14, §6.6; RFC 3551 §6)."""
        if not media.is_rtp:
            return
        listed: set[int] = set()
        for fmt in media.formats:
            if not (_RE_DIGITS.fullmatch(fmt) and int(fmt) <= 127):
                self.err(media.offset, "sdp.media", f"RTP payload type {fmt!r} is not 0-127 (RFC 3551 §3)")
                continue
            pt = int(fmt)
            if pt in listed:
                self.err(media.offset, "sdp.payload.duplicate", f"payload type {pt} listed twice on m= (RFC 8866 §5.14)")
            listed.add(pt)
            if pt not in media.rtpmap and pt not in STATIC_PAYLOAD_TYPES:
                kind = "dynamic" if pt >= 96 else "unassigned"
                self.err(media.offset, "sdp.rtpmap.missing",
                         f"{kind} payload type {pt} has no a=rtpmap (RFC 8866 §6.6, RFC 3551 §6)")
        rates = {rate for enc, rate, _ in media.rtpmap.values() if enc.lower() != "telephone-event"}
        for pt, (enc, rate, off) in media.rtpmap.items():
            if pt not in listed:
                self.warn(off, "sdp.rtpmap.unused", f"a=rtpmap for payload type {pt} not on the m= line (RFC 8866 §6.6)")
            if enc.lower() == "telephone-event" and rate != 8000 and rate not in rates:
                self.warn(off, "sdp.telephone-event",
                          f"telephone-event at {rate} Hz: 8000 Hz or the audio codec's rate is "
                          "expected (RFC 4733 §7.1.1)")

    def formats_params(self, media: _Media) -> None:
        """a=fmtp refers to a listed format; telephone-event event lists (RFC 8866 §6.15, RFC 4733)."""
        for fmt, params, off in media.fmtp:
            if fmt not in media.formats:
                self.err(off, "sdp.fmtp.unknown-pt", f"a=fmtp for format {fmt!r} not on the m= line (RFC 8866 §6.15)")
                continue
            mapping = media.rtpmap.get(int(fmt)) if fmt.isdigit() and len(fmt) <= 3 else None
            if mapping and mapping[0].lower() == "telephone-event":
                _events(self, params.strip(), off)


def _events(c: _Checker, events: str, off: int) -> None:
    """RFC 4733 §7.1.1 event list: ``0-15,66,70`` with values 0-255 and low <= high."""
    if not _RE_EVENTS.fullmatch(events):
        c.err(off, "sdp.telephone-event", f"telephone-event fmtp {events[:30]!r} is not an event list (RFC 4733 §7.1.1)")
        return
    for item in events.split(","):
        lo, _, hi = item.partition("-")
        if int(lo) > 255 or (hi and (int(hi) > 255 or int(hi) < int(lo))):
            c.err(off, "sdp.telephone-event", f"telephone-event range {item!r} outside 0-255 or reversed (RFC 4733 §7.1.1)")
            return


# -- per-line checks: (checker, value, offset of the value) ------------------------------
def _v(c: _Checker, value: str, off: int) -> None:
    if value != "0":
        c.err(off, "sdp.version", f"v={value[:10]}: only version 0 exists (RFC 8866 §5.1)")


def _o(c: _Checker, value: str, off: int) -> None:
    m = _RE_ORIGIN.fullmatch(value)
    if m is None:
        c.err(off, "sdp.origin", "o= needs '<username> <sess-id> <sess-version> <nettype> "
                                 "<addrtype> <address>' (RFC 8866 §5.2)")
        return
    _address(c, m.group(4), m.group(5), m.group(6), off + m.start(4), "sdp.origin")


def _s(c: _Checker, value: str, off: int) -> None:
    if not value:
        c.warn(off, "sdp.session-name", "empty s=: RFC 8866 §5.3 wants 's= ' or 's=-'")


def _c(c: _Checker, value: str, off: int) -> None:
    if c.media:
        c.media[-1].has_connection = True
    else:
        c.session_connection = True
    m = _RE_CONNECTION.fullmatch(value)
    if m is None:
        c.err(off, "sdp.connection", "c= needs '<nettype> <addrtype> <address>[/ttl][/n]' (RFC 8866 §5.7)")
        return
    _address(c, m.group(1), m.group(2), m.group(3), off, "sdp.connection")


def _address(c: _Checker, nettype: str, addrtype: str, address: str, off: int, rule: str) -> None:
    """nettype IN, addrtype IP4/IP6 and an address of that family or an FQDN (RFC 8866 §5.7)."""
    if nettype != "IN":
        c.warn(off, rule, f"nettype {nettype!r}: only IN is defined (RFC 8866 §5.7)")
        return
    if addrtype not in ("IP4", "IP6"):
        c.err(off, rule, f"addrtype {addrtype!r} is not IP4 or IP6 (RFC 8866 §5.7)")
        return
    if addrtype == "IP4":
        ok = bool(_RE_IP4.fullmatch(address)) or (":" not in address and bool(_RE_FQDN.fullmatch(address)))
    else:
        ok = _is_ipv6(address) or bool(_RE_FQDN.fullmatch(address))
    if not ok:
        c.err(off, rule, f"{address[:40]!r} is not an {addrtype} address or a domain name (RFC 8866 §5.7)")


def _is_ipv6(address: str) -> bool:
    if ":" not in address:
        return False
    try:
        ipaddress.IPv6Address(address)
    except ValueError:
        return False
    return True


def _b(c: _Checker, value: str, off: int) -> None:
    if not _RE_BANDWIDTH.fullmatch(value):
        c.err(off, "sdp.syntax", "b= needs '<bwtype>:<bandwidth>' (RFC 8866 §5.8)")


def _t(c: _Checker, value: str, off: int) -> None:
    if not _RE_TIMING.fullmatch(value):
        c.err(off, "sdp.syntax", "t= needs '<start-time> <stop-time>' (RFC 8866 §5.9)")


def _m(c: _Checker, value: str, off: int) -> None:
    m = _RE_MEDIA.fullmatch(value)
    if m is None:
        c.err(off, "sdp.media", "m= needs '<media> <port>[/<n>] <proto> <fmt> ...' (RFC 8866 §5.14)")
        c.media.append(_Media(off - 2, "", []))
        return
    port = m.group(2)
    if len(port) > 5 or int(port) > 65535:
        c.err(off + m.start(2), "sdp.media", f"m= port {port[:10]} is not 0-65535 (RFC 8866 §5.14)")
    c.media.append(_Media(off - 2, m.group(4), m.group(5).split()))


def _a(c: _Checker, value: str, off: int) -> None:
    m = _RE_ATTRIBUTE.fullmatch(value)
    if m is None:
        c.err(off, "sdp.attribute.syntax", f"attribute name {value.split(':', 1)[0][:20]!r} is not a token (RFC 8866 §5.13)")
        return
    name, arg = m.group(1), m.group(2)
    if name == "rtpmap":
        _rtpmap(c, arg, off)
    elif name == "fmtp":
        _fmtp(c, arg, off)


def _rtpmap(c: _Checker, arg: str | None, off: int) -> None:
    m = _RE_RTPMAP.fullmatch(arg or "")
    if m is None or int(m.group(1)) > 127:
        c.err(off, "sdp.rtpmap.syntax",
              "a=rtpmap needs '<payload type> <encoding name>/<clock rate>[/<parameters>]' (RFC 8866 §6.6)")
        return
    if not c.media:
        return
    media = c.media[-1]
    pt = int(m.group(1))
    if pt in media.rtpmap:
        c.err(off, "sdp.payload.duplicate", f"second a=rtpmap for payload type {pt} (RFC 8866 §6.6)")
        return
    media.rtpmap[pt] = (m.group(2), int(m.group(3)), off - 2)


def _fmtp(c: _Checker, arg: str | None, off: int) -> None:
    m = _RE_FMTP.fullmatch(arg or "")
    if m is None:
        c.err(off, "sdp.fmtp.syntax", "a=fmtp needs '<format> <format specific parameters>' (RFC 8866 §6.15)")
        return
    if c.media:
        c.media[-1].fmtp.append((m.group(1), m.group(2), off - 2))


_LINE_CHECKS = {"v": _v, "o": _o, "s": _s, "c": _c, "b": _b, "t": _t, "m": _m, "a": _a}


def check_sdp(data: bytes) -> list[Problem]:
    """Every RFC 8866 / RFC 3264 problem in one SDP body, sorted by byte offset; never raises."""
    try:
        return _Checker(bytes(data)).run()
    except Exception as exc:  # safety net for "never raises"; the fuzz tests keep it unused
        return [Problem(0, "sdp.internal", f"checker failed: {type(exc).__name__}: {exc}")]
