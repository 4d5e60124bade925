"""SIP and SIPS URIs (RFC 3261 §19.1) and generic ``;name=value`` parameters.

Offsets in the ``ParseError`` raised here are relative to the text passed in.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from qa.errors import ParseError
from qa.sip.lex import split_unquoted

__all__ = ["SipUri", "parse_uri", "parse_params", "format_params", "format_host",
           "parse_hostport", "unescape"]

_TOKEN_RE = re.compile(r"[A-Za-z0-9\-.!%*_+`'~]+\Z")
# hostname / IPv4address (RFC 3261 §25.1), kept lenient on label syntax.
_HOSTNAME_RE = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9\-_.]*[A-Za-z0-9.])?\Z")
_IPV6_RE = re.compile(r"[0-9A-Fa-f:.]+\Z")
_WS = frozenset(" \t\r\n")
_HEX = frozenset(b"0123456789abcdefABCDEF")


def is_token(text: str) -> bool:
    """True if ``text`` is an RFC 3261 §25.1 ``token``."""
    return _TOKEN_RE.match(text) is not None


def unescape(text: str) -> str:
    """Decode ``%HH`` escapes (RFC 3261 §19.1.2, §25.1 ``escaped``); bad escapes are kept."""
    if "%" not in text:
        return text
    out = bytearray()
    raw = text.encode("utf-8", "surrogateescape")
    i, n = 0, len(raw)
    while i < n:
        b = raw[i]
        if b == 0x25 and i + 3 <= n and raw[i + 1] in _HEX and raw[i + 2] in _HEX:
            out.append(int(raw[i + 1:i + 3], 16))
            i += 3
            continue
        out.append(b)
        i += 1
    return out.decode("utf-8", "surrogateescape")


def parse_params(text: str, offset: int = 0) -> dict[str, str | None]:
    """Parse ``*( SEMI generic-param )`` (RFC 3261 §25.1, §7.3.1).

    ``text`` is empty or starts (after optional LWS) with ``;``. Names are lower-cased
    (parameter names are case-insensitive); values are kept raw (quotes included),
    ``None`` for a parameter without ``=``. SWS around ``;`` and ``=`` is allowed.
    """
    params: dict[str, str | None] = {}
    stripped = text.strip()
    if not stripped:
        return params
    if stripped[0] != ";":
        raise ParseError("expected ';' before parameter", offset + text.find(stripped[0]))
    pos = offset + text.find(";") + 1
    try:
        parts = split_unquoted(stripped[1:], ";")
    except ParseError as exc:
        raise ParseError("unterminated quoted string in parameters", pos + exc.offset) from None
    for part in parts:
        name, eq, value = part.partition("=")
        name = name.strip()
        if not _TOKEN_RE.match(name):
            raise ParseError(f"bad parameter name {name!r}", pos)
        if eq:
            value = value.strip()
            if not value:
                raise ParseError(f"empty value for parameter {name!r}", pos)
            params[name.lower()] = value
        else:
            params[name.lower()] = None
        pos += len(part) + 1
    return params


def format_params(params: dict[str, str | None]) -> str:
    """Serialise a parameter dict as ``;name=value;flag``."""
    return "".join(f";{k}" if v is None else f";{k}={v}" for k, v in params.items())


def format_host(host: str) -> str:
    """Add the brackets of an IPv6 reference (RFC 3261 §25.1 ``IPv6reference``)."""
    return f"[{host}]" if ":" in host else host


def parse_hostport(text: str, offset: int = 0) -> tuple[str, int | None]:
    """Parse ``hostport = host [ ":" port ]`` (RFC 3261 §25.1); IPv6 hosts come back unbracketed."""
    if text.startswith("["):
        end = text.find("]")
        if end < 0:
            raise ParseError("unterminated IPv6 reference", offset)
        host = text[1:end]
        if not host or not _IPV6_RE.match(host) or ":" not in host:
            raise ParseError(f"bad IPv6 reference {text[:end + 1]!r}", offset)
        rest = text[end + 1:]
    else:
        colon = text.find(":")
        host, rest = (text, "") if colon < 0 else (text[:colon], text[colon:])
        if not host or not _HOSTNAME_RE.match(host):
            raise ParseError(f"bad host {host!r}", offset)
    if not rest:
        return host, None
    if rest[0] != ":" or not rest[1:].isdigit() or not rest[1:].isascii() or len(rest) > 6:
        raise ParseError(f"bad port {rest!r}", offset + len(text) - len(rest))
    port = int(rest[1:])
    if port > 65535:
        raise ParseError(f"port {port} out of range", offset + len(text) - len(rest))
    return host, port


@dataclass(slots=True)
class SipUri:
    """A ``sip:`` or ``sips:`` URI (RFC 3261 §19.1.1).

    ``user`` and ``password`` are kept as written (escapes not decoded: see
    :func:`unescape`); ``host`` is without IPv6 brackets; ``params`` are the
    uri-parameters (names lower-cased, ``None`` for flags such as ``lr``);
    ``headers`` the ``?name=value&...`` part.
    """

    scheme: str = "sip"
    user: str | None = None
    password: str | None = None
    host: str = ""
    port: int | None = None
    params: dict[str, str | None] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)

    def __str__(self) -> str:
        out = [self.scheme, ":"]
        if self.user is not None:
            out.append(self.user)
            if self.password is not None:
                out += [":", self.password]
            out.append("@")
        out.append(format_host(self.host))
        if self.port is not None:
            out.append(f":{self.port}")
        out.append(format_params(self.params))
        if self.headers:
            out.append("?" + "&".join(f"{k}={v}" for k, v in self.headers.items()))
        return "".join(out)

    @property
    def transport(self) -> str:
        """The ``transport`` uri-parameter, upper-cased; UDP when absent (§19.1.1)."""
        return (self.params.get("transport") or ("TLS" if self.scheme == "sips" else "UDP")).upper()

    @property
    def aor(self) -> str:
        """Address of record ``scheme:user@host`` (§10.2.1) — no port, params or headers."""
        user = f"{self.user}@" if self.user is not None else ""
        return f"{self.scheme}:{user}{format_host(self.host)}"


def parse_uri(text: str) -> SipUri:
    """Parse a SIP-URI / SIPS-URI (RFC 3261 §19.1.1, grammar §25.1).

    Raises ``ParseError`` for other schemes, whitespace, an empty user or host, a bad
    port, or malformed parameters.
    """
    colon = text.find(":")
    if colon <= 0:
        raise ParseError("URI without scheme", 0)
    scheme = text[:colon].lower()
    if scheme not in ("sip", "sips"):
        raise ParseError(f"not a sip/sips URI: scheme {text[:colon]!r}", 0)
    for i, ch in enumerate(text):
        if ch in _WS:
            raise ParseError("whitespace inside URI", i)
    pos = colon + 1
    rest = text[pos:]
    user = password = None
    at = rest.find("@")
    if at >= 0:
        userinfo = rest[:at]
        user, sep, pw = userinfo.partition(":")
        password = pw if sep else None
        if not user:
            raise ParseError("empty user part", pos)
        pos += at + 1
        rest = rest[at + 1:]
    headers: dict[str, str] = {}
    q = rest.find("?")
    if q >= 0:
        for item in rest[q + 1:].split("&"):
            name, eq, value = item.partition("=")
            if not name or not eq:
                raise ParseError(f"bad URI header {item!r}", pos + q + 1)
            headers[name] = value
        rest = rest[:q]
    semi = rest.find(";")
    hostport, ptext = (rest, "") if semi < 0 else (rest[:semi], rest[semi:])
    host, port = parse_hostport(hostport, pos)
    params: dict[str, str | None] = {}
    if ptext:
        ppos = pos + semi + 1
        for item in ptext[1:].split(";"):
            name, eq, value = item.partition("=")
            if not name or (eq and not value):
                raise ParseError(f"bad URI parameter {item!r}", ppos)
            params[name.lower()] = value if eq else None
            ppos += len(item) + 1
    return SipUri(scheme, user, password, host, port, params, headers)
