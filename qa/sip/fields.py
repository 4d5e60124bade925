"""Structured header values: name-addr (From/To/Contact), Via and CSeq (RFC 3261 §20, §25.1).

All parsers take the header *value* (one list element) and raise ``ParseError`` with
an offset relative to that text.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from qa.errors import ParseError
from qa.sip.lex import quoted_end
from qa.sip.uri import format_host, format_params, is_token, parse_hostport, parse_params

__all__ = ["NameAddr", "Via", "parse_name_addr", "parse_via", "parse_cseq", "quote"]

_CSEQ_MAX = 2 ** 31  # RFC 3261 §8.1.1.5: the sequence number MUST be less than 2**31


def quote(text: str) -> str:
    """Quote a display name as an RFC 3261 §25.1 ``quoted-string``."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _unquote(quoted: str) -> str:
    """Strip the quotes of a quoted-string and resolve its quoted-pairs (§25.1)."""
    inner = quoted[1:-1]
    if "\\" not in inner:
        return inner
    out, i = [], 0
    while i < len(inner):
        if inner[i] == "\\" and i + 1 < len(inner):
            i += 1
        out.append(inner[i])
        i += 1
    return "".join(out)


@dataclass(slots=True)
class NameAddr:
    """``name-addr`` / ``addr-spec`` plus header parameters (RFC 3261 §20.10, §20.20, §20.39).

    ``uri`` is the URI text (parse it with :func:`qa.sip.parse_uri` if it is SIP);
    ``display`` is the unquoted display name or ``None``; ``params`` the header
    parameters such as ``tag``, ``expires``, ``q`` (names lower-cased).
    """

    display: str | None
    uri: str
    params: dict[str, str | None] = field(default_factory=dict)

    @property
    def tag(self) -> str | None:
        """The ``tag`` parameter (RFC 3261 §19.3), or ``None``."""
        return self.params.get("tag")

    def __str__(self) -> str:
        if self.uri == "*":
            return "*"
        name = f"{quote(self.display)} " if self.display else ""
        return f"{name}<{self.uri}>{format_params(self.params)}"


def parse_name_addr(text: str) -> NameAddr:
    """Parse ``( name-addr / addr-spec ) *( SEMI param )`` (RFC 3261 §20.10, §25.1).

    In the bare ``addr-spec`` form everything after the first ``;`` is a header
    parameter (§20.10), e.g. the ``tag`` in ``sip:a@b;tag=x``. ``*`` (Contact: *,
    §10.2.2) comes back as ``NameAddr(None, "*")``.
    """
    lead = len(text) - len(text.lstrip())
    s = text.strip()
    if not s:
        raise ParseError("empty address", 0)
    if s == "*":
        return NameAddr(None, "*", {})
    display: str | None = None
    if s[0] == '"':
        end = quoted_end(s, 0)
        display = _unquote(s[:end])
        lt = end + len(s[end:]) - len(s[end:].lstrip())
        if lt >= len(s) or s[lt] != "<":
            raise ParseError("expected '<' after display name", lead + lt)
    else:
        lt = s.find("<")
        if lt < 0:
            semi = s.find(";")
            uri = s if semi < 0 else s[:semi].rstrip()
            if not uri or any(c in uri for c in " \t,<>\""):
                raise ParseError(f"bad addr-spec {uri!r}", lead)
            if ":" not in uri:
                raise ParseError("addr-spec without scheme", lead)
            params = parse_params(s[semi:], lead + semi) if semi >= 0 else {}
            return NameAddr(None, uri, params)
        words = s[:lt].split()
        for w in words:
            if not is_token(w):
                raise ParseError(f"display name must be tokens or quoted: {w!r}", lead)
        display = " ".join(words) or None
    gt = s.find(">", lt)
    if gt < 0:
        raise ParseError("missing '>'", lead + lt)
    uri = s[lt + 1:gt]
    if not uri or uri != uri.strip():
        raise ParseError("whitespace or nothing inside <...>", lead + lt + 1)
    if ":" not in uri:
        raise ParseError("URI without scheme inside <...>", lead + lt + 1)
    return NameAddr(display, uri, parse_params(s[gt + 1:], lead + gt + 1))


_VIA_RE = re.compile(
    r"\s*([^/\s]+)\s*/\s*([^/\s]+)\s*/\s*([^/\s;]+)\s+"  # sent-protocol (SLASH = SWS "/" SWS)
    r"(\[[^\]]*\]|[^\s:;\[\]]+)"                          # host
    r"(?:\s*:\s*([^\s;]*))?\s*"                          # [ COLON port ]
)


@dataclass(slots=True)
class Via:
    """One ``via-parm`` (RFC 3261 §20.42): ``SIP/2.0/UDP host:port;branch=...``.

    ``protocol`` is normalised without LWS (``SIP/2.0/UDP``); ``transport`` is its
    upper-cased last element; ``host`` has no IPv6 brackets.
    """

    protocol: str
    transport: str
    host: str
    port: int | None = None
    params: dict[str, str | None] = field(default_factory=dict)

    @property
    def branch(self) -> str | None:
        """``branch`` parameter (§8.1.1.7); RFC 3261 ones start with ``z9hG4bK``."""
        return self.params.get("branch")

    @property
    def received(self) -> str | None:
        """``received`` parameter (§18.2.1)."""
        return self.params.get("received")

    @property
    def rport(self) -> int | None:
        """Numeric ``rport`` value (RFC 3581 §4); ``None`` if absent or empty.

        Test ``"rport" in via.params`` for the empty request flag.
        """
        value = self.params.get("rport")
        return int(value) if value and value.isdigit() and value.isascii() else None

    @property
    def sent_by(self) -> str:
        """``host[:port]`` as it goes on the wire."""
        port = "" if self.port is None else f":{self.port}"
        return format_host(self.host) + port

    def __str__(self) -> str:
        return f"{self.protocol} {self.sent_by}{format_params(self.params)}"


def parse_via(text: str) -> Via:
    """Parse one ``via-parm`` (RFC 3261 §20.42, §25.1), LWS around ``/`` and ``:`` allowed."""
    m = _VIA_RE.match(text)
    if m is None:
        raise ParseError("malformed Via: expected 'SIP/2.0/<transport> host'", 0)
    name, version, transport, host, port = m.groups()
    if not (is_token(name) and is_token(version) and is_token(transport)):
        raise ParseError("malformed Via sent-protocol", m.start(1))
    hostport = host if port is None else f"{host}:{port}"
    h, p = parse_hostport(hostport, m.start(4))
    params = parse_params(text[m.end():], m.end())
    return Via(f"{name}/{version}/{transport}", transport.upper(), h, p, params)


def parse_cseq(text: str) -> tuple[int, str]:
    """Parse ``CSeq = 1*DIGIT LWS Method`` (RFC 3261 §20.16); number < 2**31 (§8.1.1.5)."""
    parts = text.split()
    if len(parts) != 2:
        raise ParseError("CSeq must be '<number> <method>'", 0)
    num, method = parts
    if not num.isdigit() or not num.isascii() or len(num) > 10:
        raise ParseError(f"bad CSeq number {num!r}", text.find(num))
    seq = int(num)
    if seq >= _CSEQ_MAX:
        raise ParseError(f"CSeq number {seq} not below 2**31", text.find(num))
    if not is_token(method):
        raise ParseError(f"bad CSeq method {method!r}", text.find(method))
    return seq, method
