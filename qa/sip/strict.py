"""Strict RFC 3261 conformance check of one SIP message: every problem, with its offset.

``check_message(data)`` never raises. It returns a :class:`qa.errors.Problem` for each
deviation from the RFC 3261 §25 grammar and the rules of §7, §8.1.1, §18.3 and §20
(plus RFC 5118 for IPv6 references), each with a stable ``rule`` id, the byte offset in
``data`` and a ``severity``: ``error`` where the RFC says the message must be rejected,
``warning`` where it is legal but questionable (RFC 4475 §3.3 "valid but tricky").

Design (h11-style, bytes in, problems out): the message is decoded as latin-1 so that
character offsets are byte offsets; folded header lines have their CRLF replaced by two
spaces (same length, so offsets survive); each header kind that matters has ONE
precompiled regex that is the §25 ABNF for its value (LWS/SWS included). A match is the
fast path: only a few cheap semantic checks follow (ranges, tags, branch). A miss goes
to a slower diagnosis that names the reason and the offset; the regex stays the
authority, so a diagnosis that finds nothing specific still reports ``sip.header.syntax``.

Length: one precompiled §25 ABNF regex per header kind and its diagnosis; the grammar
is long because RFC 3261 is, and one module keeps every rule id in one table.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable

from qa.errors import ParseError, Problem
from qa.sip.headers import canonical_name, pretty_name
from qa.sip.lex import element_spans, quoted_end, split_unquoted
from qa.sip.message import _find_header_end
from qa.sip.uri import parse_hostport

__all__ = ["RULES", "check_message"]

#: Every rule id ``check_message`` can report, with what it means.
RULES: dict[str, str] = {
    "sip.start-line": "malformed Request-Line / Status-Line (RFC 3261 §7.1, §7.2)",
    "sip.version": "SIP-Version other than SIP/2.0 (RFC 3261 §7.1; 505)",
    "sip.framing": "no empty line ends the header section (RFC 3261 §7)",
    "sip.encoding": "header section is not UTF-8 (RFC 3261 §7.3.1, §25.1 TEXT-UTF8)",
    "sip.whitespace": "whitespace where the grammar forbids it, bare LF or CR (RFC 3261 §7, §25.1)",
    "sip.header.syntax": "header value does not follow its RFC 3261 §25.1 grammar",
    "sip.header.missing": "a mandatory header is absent (RFC 3261 §8.1.1, §20)",
    "sip.header.duplicate": "a single-valued header appears more than once (RFC 3261 §7.3.1)",
    "sip.cseq.method-mismatch": "CSeq method differs from the request method (RFC 3261 §8.1.1.5)",
    "sip.content-length.syntax": "Content-Length is not 1*DIGIT (RFC 3261 §20.14)",
    "sip.content-length.mismatch": "Content-Length larger than the octets that follow (RFC 3261 §18.3)",
    "sip.content-length.trailing": "octets after the body are ignored (RFC 3261 §18.3)",
    "sip.uri.syntax": "URI does not follow RFC 3261 §25.1 / RFC 5118",
    "sip.uri.escape": "'%' not followed by two hex digits (RFC 3261 §25.1 escaped)",
    "sip.uri.scheme": "URI scheme an element is unlikely to support (RFC 3261 §8.2.2.1, §10.3)",
    "sip.max-forwards": "Max-Forwards outside 0-255 or zero (RFC 3261 §20.22)",
    "sip.value.oversized": "numeric value beyond its RFC 3261 range (CSeq < 2**31, delta-seconds < 2**32)",
    "sip.via.branch": "top Via branch missing, not RFC 3261 (z9hG4bK) or only the cookie (RFC 3261 §8.1.1.7)",
    "sip.via.broadcast": "Via sent-by is a broadcast address (RFC 4475 §3.3.10)",
    "sip.from.tag": "request From without tag (RFC 3261 §8.1.1.3)",
    "sip.internal": "the checker itself failed (a bug; never expected)",
}

# -- RFC 3261 §25.1 building blocks (text is latin-1, so UTF8-NONASCII is \x80-\xff) ----
_ESC = "%[0-9A-Fa-f]{2}"
_TOKEN = r"[A-Za-z0-9\-.!%*_+`'~]+"
_WORD = r"[A-Za-z0-9\-.!%*_+`'~()<>:\\\"/\[\]?{}]+"
_SWS = "[ \t]*"
_LWS = "[ \t]+"
_SEMI = f"{_SWS};{_SWS}"
_EQUAL = f"{_SWS}={_SWS}"
_COMMA = f"{_SWS},{_SWS}"
_SLASH = f"{_SWS}/{_SWS}"
_QSTRING = r'"(?:[ \t\x21\x23-\x5b\x5d-\x7e\x80-\xff]|\\[\x00-\x09\x0b\x0c\x0e-\x7f])*"'
_OCTET = "(?:25[0-5]|2[0-4][0-9]|[01]?[0-9]?[0-9])"
_IPV4 = rf"{_OCTET}(?:\.{_OCTET}){{3}}"
_IPV6REF = r"\[[0-9A-Fa-f:.]*:[0-9A-Fa-f:.]*(?:%25[A-Za-z0-9\-._~]+)?\]"
_LABEL = "[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?"
_TOPLABEL = "[A-Za-z](?:[A-Za-z0-9-]*[A-Za-z0-9])?"
_HOST = rf"(?:{_IPV6REF}|{_IPV4}|(?:{_LABEL}\.)*{_TOPLABEL}\.?)"
_PORT = "0*(?:6553[0-5]|655[0-2][0-9]|65[0-4][0-9]{2}|6[0-4][0-9]{3}|[1-5][0-9]{4}|[0-9]{1,4})"
_HOSTPORT = rf"{_HOST}(?::{_PORT})?"
_UNRES = r"A-Za-z0-9\-_.!~*'()"
_USER = rf"(?:[{_UNRES}&=+$,;?/]|{_ESC})+"
_USER_BARE = rf"(?:[{_UNRES}&=+$/]|{_ESC})+"  # addr-spec outside <>: no ; ? , (§20.10)
_PASSWORD = rf"(?:[{_UNRES}&=+$,]|{_ESC})*"
_PARAMCHAR = rf"(?:[{_UNRES}\[\]/:&+$]|{_ESC})"
_URI_PARAMS = rf"(?:;{_PARAMCHAR}+(?:={_PARAMCHAR}+)?)*"
_HNV = rf"(?:[{_UNRES}\[\]/?:+$]|{_ESC})"
_URI_HEADERS = rf"(?:\?{_HNV}+={_HNV}*(?:&{_HNV}+={_HNV}*)*)?"
_SIP_SCHEME = "[Ss][Ii][Pp][Ss]?:"
_HAS_AT = r'(?=[^@<>"\s\[\]]*@)'  # only try userinfo when an '@' follows: no backtracking
_SIP_URI = rf"{_SIP_SCHEME}(?:{_HAS_AT}{_USER}(?::{_PASSWORD})?@)?{_HOSTPORT}{_URI_PARAMS}{_URI_HEADERS}"
_SIP_URI_BARE = rf"{_SIP_SCHEME}(?:{_HAS_AT}{_USER_BARE}(?::{_PASSWORD})?@)?{_HOSTPORT}"
_NOT_SIP = r"(?![Ss][Ii][Pp][Ss]?:)"
_SCHEME = r"[A-Za-z][A-Za-z0-9+\-.]*:"
_ABS_URI = rf"{_NOT_SIP}{_SCHEME}(?:[{_UNRES};/?:@&=+$,]|{_ESC})+"
_ABS_URI_BARE = rf"{_NOT_SIP}{_SCHEME}(?:[{_UNRES}/:@&=+$]|{_ESC})+"
_GEN_PARAM = rf"{_TOKEN}(?:{_EQUAL}(?:{_TOKEN}|{_IPV6REF}|{_QSTRING}))?"
_PARAMS = rf"(?:{_SEMI}{_GEN_PARAM})*"
_DISPLAY = rf"(?:{_QSTRING}|{_TOKEN}(?:{_LWS}{_TOKEN})*)?"
_NAME_ADDR = rf"{_DISPLAY}{_SWS}<(?:{_SIP_URI}|{_ABS_URI})>"
_ADDR = rf"(?:{_NAME_ADDR}|{_SIP_URI_BARE}|{_ABS_URI_BARE}){_PARAMS}"
_ROUTE = rf"{_NAME_ADDR}{_PARAMS}"
# via-received allows a bare IPv6address (RFC 3261 §25.1; RFC 5118 §4.5 accepts both).
_VIA_PARAM = rf"{_TOKEN}(?:{_EQUAL}(?:{_TOKEN}|{_IPV6REF}|[0-9A-Fa-f.]*:[0-9A-Fa-f:.]*|{_QSTRING}))?"
_SENT_PROTOCOL = rf"{_TOKEN}{_SLASH}{_TOKEN}{_SLASH}{_TOKEN}{_LWS}"
_VIA_PARM = rf"{_SENT_PROTOCOL}{_HOST}(?:{_SWS}:{_SWS}{_PORT})?(?:{_SEMI}{_VIA_PARAM})*"
_MEDIA_TYPE = rf"{_TOKEN}{_SLASH}{_TOKEN}"
_AUTH_PARAM = rf"({_TOKEN}){_EQUAL}({_TOKEN}|{_QSTRING})"
_AUTH_PARAM_NG = rf"{_TOKEN}{_EQUAL}(?:{_TOKEN}|{_QSTRING})"
_WARNING = rf"[0-9]{{3}} (?:{_HOSTPORT}|{_TOKEN}) {_QSTRING}"


def _c(pattern: str, flags: int = 0) -> re.Pattern[str]:
    return re.compile(pattern, flags)


_RE_ADDR = _c(_ADDR)
_RE_CONTACT = _c(rf"\*|{_ADDR}(?:{_COMMA}{_ADDR})*")
_RE_ROUTE = _c(rf"{_ROUTE}(?:{_COMMA}{_ROUTE})*")
_RE_VIA = _c(rf"{_VIA_PARM}(?:{_COMMA}{_VIA_PARM})*")
_RE_VIA_PARM = _c(_VIA_PARM)
_RE_SENT_PROTOCOL = _c(_SENT_PROTOCOL)
_RE_CALL_ID = _c(rf"{_WORD}(?:@{_WORD})?")
_RE_CSEQ = _c(rf"([0-9]+){_LWS}({_TOKEN})")
_RE_DIGITS = _c("[0-9]+")
_RE_CONTENT_TYPE = _c(rf"{_MEDIA_TYPE}(?:{_SEMI}{_TOKEN}{_EQUAL}(?:{_TOKEN}|{_QSTRING}))*")
_RE_TOKENS = _c(rf"{_TOKEN}(?:{_COMMA}{_TOKEN})*")
_RE_TOKENS_OPT = _c(rf"(?:{_TOKEN}(?:{_COMMA}{_TOKEN})*)?")
_RE_ACCEPT = _c(rf"(?:{_MEDIA_TYPE}{_PARAMS}(?:{_COMMA}{_MEDIA_TYPE}{_PARAMS})*)?")
_RE_AUTH = _c(rf"({_TOKEN}){_LWS}{_AUTH_PARAM_NG}(?:{_COMMA}{_AUTH_PARAM_NG})*")
_RE_AUTH_PARAM = _c(_AUTH_PARAM)
_RE_DATE = _c(r"(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun), [0-9]{2} "
              r"(?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) [0-9]{4} "
              r"[0-9]{2}:[0-9]{2}:[0-9]{2} GMT", re.I)
_RE_RETRY_AFTER = _c(rf"([0-9]+)(?:{_SWS}\([^()]*\))?{_PARAMS}")
_RE_WARNING = _c(rf"{_WARNING}(?:{_COMMA}{_WARNING})*")
_RE_SIP_URI = _c(_SIP_URI)
_RE_ABS_URI = _c(_ABS_URI)
_RE_TEL_URI = _c(r"[Tt][Ee][Ll]:(?:\+[0-9\-.()]*[0-9][0-9\-.()]*"
                 r"|[0-9A-Fa-f*#\-.()]*[0-9A-Fa-f*#][0-9A-Fa-f*#\-.()]*)"
                 rf"(?:;{_PARAMCHAR}+(?:={_PARAMCHAR}+)?)*")
_RE_ADDR_SPEC = _c(rf"{_SIP_URI}|{_ABS_URI}")
_RE_GEN_PARAM = _c(_GEN_PARAM)
_RE_VIA_PARAM = _c(_VIA_PARAM)
_RE_TOKEN = _c(_TOKEN)
_RE_METHOD_URI = _c(rf"({_TOKEN}) ")
_RE_VERSION = _c(r"[Ss][Ii][Pp]/([0-9]+)\.([0-9]+)")
_RE_REASON = _c(rf"(?:[{_UNRES};/?:@&=+$, \t\x80-\xff]|{_ESC})*")
_RE_SCHEME = _c(_SCHEME)
_RE_CTL = _c(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_RE_BAD_ESCAPE = _c(r"%(?![0-9A-Fa-f]{2})")
_RE_IPV6_SCAN = _c(r"\[([0-9A-Fa-f:.]*:[0-9A-Fa-f:.]*)(%25[A-Za-z0-9\-._~]+)?\]")
# searches start at the literal ';' (fast scan); the values were already checked by the ABNF
_RE_BRANCH = _c(rf";{_SWS}branch{_EQUAL}({_TOKEN})", re.I)
_RE_TAG = _c(rf";{_SWS}tag{_EQUAL}", re.I)
_RE_EXPIRES_PARAM = _c(rf";{_SWS}expires{_EQUAL}([0-9]+)", re.I)
_RE_RECEIVED = _c(rf";{_SWS}received{_EQUAL}([^ \t;,]+)", re.I)

_COOKIE = "z9hG4bK"
_CSEQ_LIMIT = 2 ** 31          # RFC 3261 §8.1.1.5
_DELTA_LIMIT = 2 ** 32 - 1     # RFC 3261 §20.19 Expires, §20.33 Retry-After, §20.10 expires
_TOKEN_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-.!%*_+`'~")
#: Headers that may appear once only (RFC 3261 §7.3.1: only list headers may repeat).
_SINGLE = frozenset({"from", "to", "call-id", "cseq", "max-forwards", "content-length",
                     "content-type", "expires", "min-expires", "date", "retry-after"})
_SECTION = {
    "accept": "20.1", "allow": "20.5", "authorization": "20.7", "call-id": "20.8",
    "contact": "20.10", "content-length": "20.14", "content-type": "20.15", "cseq": "20.16",
    "date": "20.17", "expires": "20.19", "from": "20.20", "max-forwards": "20.22",
    "min-expires": "20.23", "proxy-authenticate": "20.27", "proxy-authorization": "20.28",
    "proxy-require": "20.29", "record-route": "20.30", "require": "20.32",
    "retry-after": "20.33", "route": "20.34", "supported": "20.37", "to": "20.39",
    "unsupported": "20.40", "via": "20.42", "warning": "20.43", "www-authenticate": "20.44",
}
# Digest parameters that must / must not be quoted-strings (RFC 3261 §25.1 dig-resp, digest-cln).
_DIGEST_QUOTED = frozenset({"username", "realm", "nonce", "uri", "response", "cnonce",
                            "opaque", "domain"})
_DIGEST_UNQUOTED = frozenset({"algorithm", "nc", "stale"})
_KEY_CACHE: dict[str, str] = {}
#: (key, value offset from the line start, value, problems as (offset from the line start,
#: rule, reason, severity), the key's _STATE hook or None) of one header line: see
#: _Checker._entry.
_Entry = tuple[str, int, str, tuple[tuple[int, str, str, str], ...], Callable | None]
_LINE_MEMO_SIZE = 4096
#: line -> _Entry, per (is_request, method == "REGISTER"); each cleared when full.
_LINE_MEMOS: dict[tuple[bool, bool], dict[str, _Entry]] = {
    (request, register): {} for request in (False, True) for register in (False, True)}
#: start line -> (is_request, method, problems from the line start); cleared when full.
_START_MEMO: dict[str, tuple[bool, str, tuple[tuple[int, str, str, str], ...]]] = {}
# One header line plus its continuation lines (§7.3.1); the name part is checked separately.
_LINE_TEXT = r"[^\r\n]*(?:\r(?!\n)[^\r\n]*)*"  # a lone CR is reported once, by _section_checks
_RE_HEADER_LINE = re.compile(rf"([^:\r\n]*):({_LINE_TEXT}(?:\r?\n[ \t]{_LINE_TEXT})*)(?:\r?\n|\Z)")


#: Headers whose lines differ call by call only in a transaction or dialog id: the Via
#: branch (RFC 3261 §8.1.1.7), the From and To tags (§19.3).
_VOLATILE_KEYS = frozenset({"via", "from", "to"})
#: Such an id made of letters, digits, '-', '_' and '.' only, the whole token (nothing of
#: the token class follows). Replaced by as many 'x' it is still a token of the same length,
#: so the line's check finds exactly what it finds on the original: no '[' (IPv6), no ';'
#: or '=' (another parameter) can appear or vanish, and a line holding the broadcast
#: address (the one check that reads digits and dots anywhere) keeps its own form.
_RE_VOLATILE = re.compile(r"(;(?:branch=z9hG4bK|tag=))([A-Za-z0-9_.-]+)(?![A-Za-z0-9\-.!%*_+`'~])")


def _normal_form(line: str) -> str:
    """``line`` with its Via branch and From/To tag ids x-ed out (:data:`_RE_VOLATILE`): the
    key under which a clean line's check is shared by every line of the same form."""
    if "255.255.255.255" in line:
        return line
    return _RE_VOLATILE.sub(_x_out, line)


def _x_out(m: re.Match[str]) -> str:
    return m.group(1) + "x" * len(m.group(2))


class _Checker:
    """One pass over one message; problems accumulate in ``self.problems``.

    ``fast=False`` turns off the fast paths (plain-line split, start-line and header-line
    memos) and checks every line with the line regex: the reference the fast paths are
    tested against (tests/unit/test_perf_equivalence.py).
    """

    def __init__(self, data: bytes, fast: bool = True) -> None:
        self.data = data
        self.fast = fast
        self.text = data.decode("latin-1")
        self.problems: list[Problem] = []
        self.is_request = False
        self.method = ""
        self.top_branch: str | None = None
        self.seen_via = False
        self.cseq: tuple[str, int] | None = None  # (method, offset)
        self.content_length: tuple[int, int] | None = None  # (value, offset)
        self.contact_star: int | None = None
        self.expires: int | None = None
        self.content_type_seen = False
        self.first_via = 0

    # -- reporting -------------------------------------------------------------------
    def err(self, offset: int, rule: str, reason: str) -> None:
        self.problems.append(Problem(offset, rule, reason))

    def warn(self, offset: int, rule: str, reason: str) -> None:
        self.problems.append(Problem(offset, rule, reason, "warning"))

    # -- the pass --------------------------------------------------------------------
    def run(self) -> list[Problem]:
        text = self.text
        n = len(text)
        start = n - len(text.lstrip("\r\n"))
        if start >= n:
            self.err(start, "sip.start-line", "empty message")
            return self.problems
        end, body_start = _find_header_end(self.data, start)
        if end < 0:
            self.err(n, "sip.framing", "no empty line after the header section (RFC 3261 §7)")
            end = body_start = n
        crlf_only = self._section_checks(start, end)
        first_end = text.find("\n", start, end)
        if first_end < 0:
            first_end = end
        line = text[start:first_end]
        self.start_line(line[:-1] if line.endswith("\r") else line, start)
        limit = end + (2 if text.startswith("\r\n", end) else 1) if end < n else n
        keys = self.headers(first_end + 1, limit, crlf_only and first_end < end and limit == end + 2)
        self.message_rules(keys, end)
        self.body(body_start)
        self.problems.sort(key=_offset)
        return self.problems

    def _section_checks(self, start: int, end: int) -> bool:
        """Encoding, control characters and line ends of the header section (§7, §25.1);
        True when every line of it ends in CRLF (no lone CR, no bare LF)."""
        head = self.text[start:end]
        if not head.isascii():
            try:
                self.data[start:end].decode("utf-8")
            except UnicodeDecodeError as exc:
                self.err(start + exc.start, "sip.encoding",
                         "header section is not valid UTF-8 (RFC 3261 §7.3.1, §25.1 TEXT-UTF8)")
        for m in _RE_CTL.finditer(head):
            if m.start() == 0 or head[m.start() - 1] != "\\":
                self.err(start + m.start(), "sip.header.syntax",
                         f"control character 0x{ord(m.group()):02x} in the header section "
                         "(RFC 3261 §25.1; only a quoted-pair may carry one)")
                break
        crlf, cr = head.count("\r\n"), head.count("\r")
        if cr != crlf:
            self.err(start + _lone_cr(head), "sip.whitespace",
                     "CR not followed by LF (RFC 3261 §7: lines end in CRLF)")
        lf = head.count("\n")
        if lf != crlf:
            self.warn(start + _bare_lf(head), "sip.whitespace",
                      "line ends in a bare LF, not CRLF (RFC 3261 §7)")
        return lf == crlf == cr

    def headers(self, pos: int, limit: int, plain: bool = False) -> set[str]:
        """Check every header line in ``text[pos:limit]``; return the keys seen (§7.3).

        ``plain`` (every line ends in CRLF, the last one included) allows the fast split
        when no line is folded either; otherwise the line regex finds the lines.
        """
        seen: set[str] = set()
        block = self.text[pos:limit]
        if plain and self.fast and "\n " not in block and "\n\t" not in block:
            self._plain_lines(block, pos, seen)
        else:
            self._regex_lines(pos, limit, seen)
        return seen

    def _plain_lines(self, block: str, pos: int, seen: set[str]) -> None:
        """Fast path: unfolded CRLF lines, so a line is a header exactly when it has a ':'
        (what :data:`_RE_HEADER_LINE` matches in such a block). Lines repeat byte for
        byte across a call (From, To, Call-ID, Contact, Route...), so what a line amounts
        to is memoised per context (:meth:`_line_memo`)."""
        memo = self._line_memo()
        apply = self._apply
        lines = block.split("\r\n")
        if not lines[-1]:
            lines.pop()  # the block ends in CRLF: no line after it
        for line in lines:
            entry = memo.get(line)
            if entry is None:
                name, colon, value = line.partition(":")
                if not colon:
                    self._bad_line(pos, pos + len(line) + 2, bool(seen))
                    pos += len(line) + 2
                    continue
                normal = _normal_form(line) if _KEY_CACHE.get(name) in _VOLATILE_KEYS else line
                clean = memo.get(normal) if normal != line else None
                if clean is not None:     # a clean line of the same form: clean too, own value
                    entry = (clean[0], clean[1], line[clean[1]:].rstrip(" \t"), (), clean[4])
                else:
                    entry = self._entry(name, value, pos)
                    if entry is None:
                        pos += len(line) + 2
                        continue
                    if len(memo) >= _LINE_MEMO_SIZE:
                        memo.clear()
                    memo[line] = entry
                    if normal != line and not entry[3]:
                        memo[normal] = entry
            key = entry[0]
            if key in seen or entry[3] or key == "via":
                apply(entry, pos, seen)   # duplicates, problems, the first Via's offset
            else:                         # the usual line: seen once, clean (inlined _apply)
                seen.add(key)
                state = entry[4]
                if state is not None:
                    state(self, entry[2], pos + entry[1], key)
            pos += len(line) + 2

    def _line_memo(self) -> dict[str, _Entry]:
        """The memo of line -> :data:`_Entry` valid for this message: the pure checks
        read nothing of the message but the value, whether it is a request and whether
        it is a REGISTER (:data:`_CHECKS`), so entries are kept apart by those two."""
        return _LINE_MEMOS[self.is_request, self.method == "REGISTER"]

    def _regex_lines(self, pos: int, limit: int, seen: set[str]) -> None:
        """General path: folded lines, bare LF and lone CR, one regex match per header."""
        text = self.text
        match = _RE_HEADER_LINE.match
        while pos < limit:
            m = match(text, pos, limit)
            if m is None:
                pos = self._bad_line(pos, limit, bool(seen))
                continue
            pos = m.end()
            name, value = m.groups()
            if "\n" in value:  # folded (§7.3.1): CRLF -> two spaces keeps every offset
                value = value.replace("\r\n", "  ").replace("\n", " ")
            entry = self._entry(name, value, m.start())
            if entry is not None:
                self._apply(entry, m.start(), seen)

    def _entry(self, name: str, value: str, start: int) -> _Entry | None:
        """What the header line ``name:value`` at ``start`` amounts to, independent of
        where it is: (key, value offset and value, the pure check's problems with offsets
        from the line start). None (reported) when the name is not a token."""
        key = _KEY_CACHE.get(name)
        if key is None:
            key = self._header_name(name, start)
            if key is None:
                return None
        delta = len(name) + 1
        if value[:1] in (" ", "\t"):
            stripped = value.lstrip(" \t")
            delta += len(value) - len(stripped)
            value = stripped
        if value[-1:] in (" ", "\t"):
            value = value.rstrip(" \t")
        check = _CHECKS.get(key)
        if check is None:
            return key, delta, value, (), _STATE.get(key)
        problems = self.problems
        mark = len(problems)
        base = 0 if self.fast else start  # the reference checks at the real offsets
        check(self, value, base + delta, key)
        found = tuple((p.offset - base, p.rule, p.reason, p.severity) for p in problems[mark:])
        del problems[mark:]
        return key, delta, value, found, _STATE.get(key)

    def _apply(self, entry: _Entry, start: int, seen: set[str]) -> None:
        """Account one header line at ``start``: duplicates, its problems, its effect on
        the message state (:data:`_STATE`)."""
        key, delta, value, found, state = entry
        if key in seen:
            if key in _SINGLE:
                self.err(start, "sip.header.duplicate",
                         f"more than one {pretty_name(key)} header (RFC 3261 §7.3.1, §20)")
        else:
            seen.add(key)
            if key == "via":
                self.first_via = start
        if found:
            self.problems += [Problem(start + off, rule, reason, severity)
                              for off, rule, reason, severity in found]
        if state is not None:
            state(self, value, start + delta, key)

    def _header_name(self, name: str, off: int) -> str | None:
        """Canonical key of a header name not seen before; None (reported) if not a token."""
        stripped = name.rstrip(" \t")
        if not _RE_TOKEN.fullmatch(stripped):
            if name[:1] in (" ", "\t"):
                self.err(off, "sip.whitespace",
                         "continuation line before the first header (RFC 3261 §7.3.1)")
            else:
                self.err(off, "sip.header.syntax", f"bad header name {stripped[:40]!r} (RFC 3261 §25.1 token)")
            return None
        key = canonical_name(stripped)
        if len(_KEY_CACHE) < 1024:
            _KEY_CACHE[name] = key
        return key

    def _bad_line(self, pos: int, limit: int, after_header: bool) -> int:
        """Report a header line that is not 'name: value' and return where the next starts."""
        nl = self.text.find("\n", pos, limit)
        nxt = limit if nl < 0 else nl + 1
        line = self.text[pos:nxt].rstrip("\r\n")
        if line[:1] in (" ", "\t") and not after_header:
            self.err(pos, "sip.whitespace", "continuation line before the first header (RFC 3261 §7.3.1)")
        elif ":" not in line:
            self.err(pos, "sip.header.syntax", "header line without ':' (RFC 3261 §7.3)")
        else:
            self.err(pos + line.find("\r"), "sip.whitespace", "CR inside a header line (RFC 3261 §7)")
        return nxt

    # -- start line (RFC 3261 §7.1, §7.2) --------------------------------------------
    def start_line(self, line: str, off: int) -> None:
        """Check the start line at ``off``; memoised like header lines: its problems
        depend on the line alone, its offsets on ``off`` by addition."""
        if not self.fast:
            self._check_start_line(line, off)
            return
        found = _START_MEMO.get(line)
        if found is None:
            problems = self.problems
            mark = len(problems)
            self._check_start_line(line, 0)
            found = (self.is_request, self.method,
                     tuple((p.offset, p.rule, p.reason, p.severity) for p in problems[mark:]))
            del problems[mark:]
            if len(_START_MEMO) >= _LINE_MEMO_SIZE:
                _START_MEMO.clear()
            _START_MEMO[line] = found
        self.is_request, self.method, seen = found
        if seen:
            self.problems += [Problem(off + at, rule, reason, severity)
                              for at, rule, reason, severity in seen]

    def _check_start_line(self, line: str, off: int) -> None:
        if line[:4].upper() == "SIP/":
            self.status_line(line, off)
            return
        self.is_request = True
        parts = line.split(" ")
        if len(parts) != 3 or "" in parts or "\t" in line:
            fixed = self._request_line_whitespace(line, off)
            if fixed is None:
                return
            parts = fixed
        method, uri, version = parts
        if not _RE_TOKEN.fullmatch(method):
            self.err(off, "sip.start-line", f"bad Method {method!r} (RFC 3261 §25.1 token)")
        self.method = method
        self.request_uri(uri, off + line.find(uri, len(method)))
        self.version(version, off + len(line) - len(version))

    def _request_line_whitespace(self, line: str, off: int) -> list[str] | None:
        """Report SP/HTAB problems in a Request-Line; return its 3 elements or None."""
        if line != line.rstrip(" \t"):
            self.err(off + len(line.rstrip(" \t")), "sip.whitespace",
                     "whitespace after SIP-Version at the end of the Request-Line (RFC 3261 §7.1)")
        if line != line.lstrip(" \t"):
            self.err(off, "sip.whitespace", "whitespace before the Method (RFC 3261 §7.1)")
        spans = [(m.start(), m.group()) for m in re.finditer(r"[^ \t]+", line)]
        inner = line.strip(" \t")
        if "  " in inner or "\t" in inner:
            i = len(line) - len(line.lstrip(" \t")) + min(
                (inner.find(s) for s in ("  ", "\t", " \t", "\t ") if s in inner))
            if len(spans) == 3:
                self.err(off + i, "sip.whitespace",
                         "Request-Line elements must be separated by exactly one SP (RFC 3261 §7.1)")
        if len(spans) == 3:
            return [s for _, s in spans]
        if len(spans) > 3 and _RE_VERSION.fullmatch(spans[-1][1]):
            self.err(off + spans[1][0] + len(spans[1][1]), "sip.uri.syntax",
                     "whitespace inside the Request-URI (RFC 3261 §7.1, §25.1: no LWS in a URI)")
            return None
        self.err(off, "sip.start-line",
                 "malformed Request-Line: expected 'Method SP Request-URI SP SIP-Version' (RFC 3261 §7.1)")
        return None

    def status_line(self, line: str, off: int) -> None:
        parts = line.split(" ", 2)
        self.version(parts[0], off)
        if len(parts) < 2:
            self.err(off + len(line), "sip.start-line", "Status-Line without Status-Code (RFC 3261 §7.2)")
            return
        code = parts[1]
        coff = off + len(parts[0]) + 1
        if not (len(code) == 3 and _RE_DIGITS.fullmatch(code)):
            self.err(coff, "sip.start-line",
                     f"Status-Code {code[:20]!r} is not 3 digits (RFC 3261 §7.2, §25.1)")
        elif code[0] not in "123456":
            self.err(coff, "sip.start-line", f"Status-Code {code} outside 100-699 (RFC 3261 §21)")
        if len(parts) < 3:
            self.err(off + len(line), "sip.start-line",
                     "no SP before the Reason-Phrase (RFC 3261 §7.2)")
            return
        reason = parts[2]
        if not _RE_REASON.fullmatch(reason):
            bad = _first_bad(reason, _REASON_CHARS)
            self.err(coff + 4 + bad, "sip.start-line",
                     f"character {reason[bad]!r} not allowed in the Reason-Phrase (RFC 3261 §25.1)")

    def version(self, version: str, off: int) -> None:
        m = _RE_VERSION.fullmatch(version)
        if m is None:
            self.err(off, "sip.start-line", f"malformed SIP-Version {version[:20]!r} (RFC 3261 §7.1)")
        elif (int(m.group(1)), int(m.group(2))) != (2, 0):
            self.err(off, "sip.version",
                     f"unsupported SIP-Version {version!r}: only SIP/2.0 (RFC 3261 §7.1; answer 505)")
        elif version != "SIP/2.0":
            self.warn(off, "sip.version", f"SIP-Version {version!r} should be 'SIP/2.0' (RFC 3261 §7.1)")

    def request_uri(self, uri: str, off: int) -> None:
        m = _RE_SCHEME.match(uri)
        scheme = uri[:m.end() - 1].lower() if m else ""
        if scheme in ("sip", "sips"):
            if _RE_SIP_URI.fullmatch(uri):
                self.ipv6(uri, off)
                host = uri[uri.find("@") + 1:]
                if "?" in host:
                    self.err(off + uri.find("?", len(uri) - len(host)), "sip.uri.syntax",
                             "headers ('?...') are not allowed in a Request-URI "
                             "(RFC 3261 §19.1.1 table 1, RFC 4475 §3.1.2.11)")
            elif not self.diagnose_uri(uri, off, "Request-URI"):
                self.err(off, "sip.uri.syntax", "malformed SIP Request-URI (RFC 3261 §25.1)")
        elif scheme == "tel":
            if not _RE_TEL_URI.fullmatch(uri):
                self.err(off, "sip.uri.syntax", "malformed tel: Request-URI (RFC 3966 §3)")
        elif not uri[:1].isalpha() or m is None:
            self.err(off, "sip.uri.syntax",
                     f"Request-URI {uri[:40]!r} is not an absolute URI (RFC 3261 §25.1)")
        elif _RE_ABS_URI.fullmatch(uri):
            self.warn(off, "sip.uri.scheme",
                      f"Request-URI scheme {scheme!r} is not sip/sips/tel: expect 416 (RFC 3261 §8.2.2.1)")
        elif not self.diagnose_uri(uri, off, "Request-URI"):
            self.err(off, "sip.uri.syntax", "malformed Request-URI (RFC 3261 §25.1 absoluteURI)")

    # -- message-level rules ---------------------------------------------------------
    def message_rules(self, keys: set[str], end: int) -> None:
        compat = self.top_branch is None or not self.top_branch.startswith(_COOKIE)
        for key in ("via", "from", "to", "call-id", "cseq"):
            if key not in keys:
                self.err(end, "sip.header.missing",
                         f"missing mandatory header {pretty_name(key)} (RFC 3261 §8.1.1)")
        if self.is_request:
            self._request_rules(keys, compat, end)
        if self.seen_via and self.top_branch is None:
            self.warn(self.first_via, "sip.via.branch",
                      "top Via has no branch: RFC 2543 transaction matching (RFC 3261 §8.1.1.7)")

    def _request_rules(self, keys: set[str], compat: bool, end: int) -> None:
        report = self.warn if compat else self.err
        why = " (RFC 2543-style request, tolerated)" if compat else ""
        if "max-forwards" not in keys:
            report(end, "sip.header.missing",
                   f"missing mandatory header Max-Forwards (RFC 3261 §8.1.1.6){why}")
        if self.method == "INVITE" and "contact" not in keys:
            report(end, "sip.header.missing",
                   f"INVITE without Contact (RFC 3261 §8.1.1.8){why}")
        if self.cseq is not None and self.cseq[0] != self.method and self.method:
            self.err(self.cseq[1], "sip.cseq.method-mismatch",
                     f"CSeq method {self.cseq[0]!r} does not match the request method "
                     f"{self.method!r} (RFC 3261 §8.1.1.5)")
        if self.contact_star is not None:
            if self.method != "REGISTER":
                self.err(self.contact_star, "sip.header.syntax",
                         "Contact: * is only allowed in REGISTER (RFC 3261 §10.2.2)")
            elif self.expires != 0:
                self.err(self.contact_star, "sip.header.syntax",
                         "Contact: * requires Expires: 0 (RFC 3261 §10.2.2)")

    def body(self, body_start: int) -> None:
        n = len(self.text)
        available = n - body_start
        length = available
        if self.content_length is not None:
            value, off = self.content_length
            if value > available:
                self.err(off, "sip.content-length.mismatch",
                         f"Content-Length is {value} but {available} octets follow the header "
                         "section (RFC 3261 §18.3, §20.14)")
            elif value < available:
                length = value
                if self.text[body_start + value:].strip(" \t\r\n"):
                    self.warn(body_start + value, "sip.content-length.trailing",
                              f"{available - value} octets after the {value}-octet body are "
                              "ignored (RFC 3261 §18.3)")
        if length and self.text[body_start:body_start + length].strip(" \t\r\n") and \
                not self.content_type_seen:
            self.err(body_start, "sip.header.missing",
                     "message body without Content-Type (RFC 3261 §7.4.1, §20.15)")

    # -- diagnosis (slow path: the regex did not match) ------------------------------
    def generic(self, off: int, key: str) -> None:
        section = _SECTION.get(key)
        where = f"RFC 3261 §{section}" if section else "RFC 3261 §25.1"
        self.err(off, "sip.header.syntax", f"malformed {pretty_name(key)} value ({where})")

    def diagnose_uri(self, uri: str, off: int, where: str) -> bool:
        """Report why ``uri`` is not a valid URI; False if no specific reason was found."""
        ws = _first_ws(uri)
        if ws >= 0:
            self.err(off + ws, "sip.uri.syntax", f"whitespace inside the {where} (RFC 3261 §25.1)")
            return True
        bad = _RE_BAD_ESCAPE.search(uri)
        if bad is not None:
            self.err(off + bad.start(), "sip.uri.escape",
                     f"'%' not followed by two hex digits in the {where} (RFC 3261 §25.1 escaped)")
            return True
        m = _RE_SCHEME.match(uri)
        if m is None:
            self.err(off, "sip.uri.syntax", f"{where} without a scheme (RFC 3261 §25.1)")
            return True
        if uri[:m.end() - 1].lower() not in ("sip", "sips"):
            return False
        return self._diagnose_sip_uri(uri, off, m.end(), where)

    def _diagnose_sip_uri(self, uri: str, off: int, pos: int, where: str) -> bool:
        at = uri.find("@")
        if at >= 0:
            user = uri[pos:at]
            bad = _first_bad(user, _USERINFO_CHARS)
            if bad < len(user) or not user:
                self.err(off + pos + bad, "sip.uri.syntax",
                         f"bad userinfo in the {where} (RFC 3261 §25.1 user/password)")
                return True
            pos = at + 1
        rest = uri[pos:]
        cut = min((i for i in (rest.find(";"), rest.find("?")) if i >= 0), default=len(rest))
        hostport = rest[:cut]
        if not hostport.startswith("[") and hostport.count(":") >= 2:
            self.err(off + pos, "sip.uri.syntax",
                     f"IPv6 address in the {where} must be enclosed in '[' ']' "
                     "(RFC 3261 §25.1 IPv6reference, RFC 5118 §4.2)")
            return True
        try:
            parse_hostport(hostport, off + pos)
        except ParseError as exc:
            self.err(exc.offset, "sip.uri.syntax", f"{exc.reason} in the {where} (RFC 3261 §25.1)")
            return True
        if not self.ipv6(hostport, off + pos):
            return True
        return self._diagnose_uri_params(rest[cut:], off + pos + cut, where)

    def _diagnose_uri_params(self, tail: str, off: int, where: str) -> bool:
        q = tail.find("?")
        params = tail if q < 0 else tail[:q]
        pos = 0
        for item in params.split(";")[1:]:
            pos += 1
            if not item:
                self.err(off + pos, "sip.uri.syntax", f"empty uri-parameter in the {where} (RFC 3261 §25.1)")
                return True
            if not _RE_URI_PARAM.fullmatch(item):
                self.err(off + pos, "sip.uri.syntax",
                         f"malformed uri-parameter {item[:30]!r} in the {where} (RFC 3261 §25.1)")
                return True
            pos += len(item)
        if q >= 0 and not _RE_URI_HEADERS.fullmatch(tail[q:]):
            self.err(off + q, "sip.uri.syntax", f"malformed headers part in the {where} (RFC 3261 §25.1)")
            return True
        return False

    def diagnose_addr(self, text: str, off: int, key: str) -> bool:
        """Why one (name-addr / addr-spec) *(SEMI param) element is malformed (§20.10, §25.1)."""
        s = text.lstrip(" \t")
        off += len(text) - len(s)
        header = pretty_name(key)
        if not s:
            self.err(off, "sip.header.syntax", f"empty {header} value (RFC 3261 §25.1)")
            return True
        if s[0] == '"':
            q = _quote_end(s, 0)
            if q < 0:
                self.err(off, "sip.header.syntax",
                         f"unterminated quoted string in the {header} display name (RFC 3261 §25.1)")
                return True
            lt = s.find("<", q)
            if lt < 0 or s[q:lt].strip(" \t"):
                self.err(off + q, "sip.header.syntax",
                         f"expected '<' after the quoted display name in {header} (RFC 3261 §25.1)")
                return True
        else:
            lt = s.find("<")
            if lt < 0:
                return self._diagnose_bare(s, off, header, key)
            bad = next((i for i, ch in enumerate(s[:lt]) if ch not in _TOKEN_CHARS and ch not in " \t"), -1)
            if bad >= 0:
                self.err(off + bad, "sip.header.syntax",
                         f"display name {s[:lt].strip()!r} in {header} has non-token characters "
                         "and must be a quoted-string (RFC 3261 §25.1 display-name)")
                return True
        gt = s.find(">", lt)
        if gt < 0:
            self.err(off + lt, "sip.header.syntax", f"'<' without '>' in {header} (RFC 3261 §25.1)")
            return True
        uri = s[lt + 1:gt]
        if uri != uri.strip(" \t"):
            self.err(off + lt + 1, "sip.whitespace",
                     f"whitespace inside '<' '>' around the {header} URI (RFC 3261 §25.1 addr-spec)")
            return True
        if not _RE_ADDR_SPEC.fullmatch(uri) and self.diagnose_uri(uri, off + lt + 1, f"{header} URI"):
            return True
        return self.diagnose_params(s[gt + 1:], off + gt + 1, header, _RE_GEN_PARAM)

    def _diagnose_bare(self, s: str, off: int, header: str, key: str) -> bool:
        semi = s.find(";")
        uri = s if semi < 0 else s[:semi]
        for ch in "?,":
            if ch in uri:
                self.err(off + uri.find(ch), "sip.header.syntax",
                         f"a {header} URI containing '{ch}' must be enclosed in '<' '>' (RFC 3261 §20.10)")
                return True
        if self.diagnose_uri(uri.rstrip(" \t"), off, f"{header} URI"):
            return True
        return semi >= 0 and self.diagnose_params(s[semi:], off + semi, header, _RE_GEN_PARAM)

    def diagnose_params(self, tail: str, off: int, header: str, param_re: re.Pattern[str]) -> bool:
        """``*( SEMI param )`` after an address or Via sent-by (RFC 3261 §25.1 generic-param)."""
        parts = _split_unquoted(tail, ";")
        if parts is None:
            self.err(off, "sip.header.syntax", f"unterminated quoted string in {header} parameters")
            return True
        if parts[0].strip(" \t"):
            self.err(off, "sip.header.syntax",
                     f"unexpected {parts[0].strip()[:20]!r} in {header} where ';' was expected")
            return True
        pos = len(parts[0])
        for part in parts[1:]:
            pos += 1
            item = part.strip(" \t")
            if not item:
                self.err(off + pos, "sip.header.syntax", f"empty parameter (';;') in {header} (RFC 3261 §25.1)")
                return True
            if not param_re.fullmatch(item):
                self.err(off + pos, "sip.header.syntax",
                         f"malformed parameter {item[:30]!r} in {header} (RFC 3261 §25.1 generic-param)")
                return True
            pos += len(part)
        return False

    def diagnose_list(self, value: str, off: int, key: str,
                      element: Callable[[str, int, str], bool]) -> bool:
        """Split on commas outside quotes and <>; report empty elements, then each bad one."""
        spans = _list_spans(value)
        if spans is None:
            self.err(off, "sip.header.syntax",
                     f"unterminated quoted string or '<' in {pretty_name(key)} (RFC 3261 §25.1)")
            return True
        for s, e in spans:
            if not value[s:e].strip(" \t"):
                self.err(off + s, "sip.header.syntax",
                         f"empty element (',,') in {pretty_name(key)} (RFC 3261 §7.3.1)")
                return True
        return any(element(value[s:e], off + s, key) for s, e in spans)

    def diagnose_via(self, parm: str, off: int, key: str) -> bool:
        s = parm.lstrip(" \t")
        off += len(parm) - len(s)
        s = s.rstrip(" \t")
        if _RE_VIA_PARM.fullmatch(s):
            return False
        m = _RE_SENT_PROTOCOL.match(s)
        if m is None:
            self.err(off, "sip.header.syntax",
                     "malformed Via sent-protocol: expected 'SIP/2.0/transport SP host' (RFC 3261 §20.42)")
            return True
        rest = s[m.end():]
        cut = rest.find(";")
        sent_by = (rest if cut < 0 else rest[:cut]).rstrip(" \t")
        hp = re.sub(r"[ \t]*:[ \t]*", ":", sent_by) if ":" in sent_by else sent_by
        if not hp.startswith("[") and hp.count(":") >= 2:
            self.err(off + m.end(), "sip.uri.syntax",
                     "IPv6 address in the Via sent-by must be enclosed in '[' ']' (RFC 5118 §4.5, RFC 3261 §25.1)")
            return True
        try:
            parse_hostport(hp, off + m.end())
        except ParseError as exc:
            self.err(exc.offset, "sip.header.syntax", f"{exc.reason} in the Via sent-by (RFC 3261 §20.42)")
            return True
        return cut >= 0 and self.diagnose_params(rest[cut:], off + m.end() + cut, "Via", _RE_VIA_PARAM)

    # -- semantic helpers ------------------------------------------------------------
    def ipv6(self, text: str, off: int) -> bool:
        """Validate every bracketed IPv6 reference (RFC 5118 §4.3, §4.10); False if one is bad."""
        if "[" not in text:
            return True
        ok = True
        for m in _RE_IPV6_SCAN.finditer(text):
            addr = m.group(1)
            try:
                ipaddress.IPv6Address(addr)
            except ValueError:
                self.err(off + m.start(), "sip.uri.syntax",
                         f"[{addr}] is not a valid IPv6 address (RFC 5118 §4.10, RFC 4291 §2.2)")
                ok = False
                continue
            if m.group(2):
                self.warn(off + m.start(), "sip.uri.syntax",
                          "zone index in an IPv6 reference is outside the RFC 3261 grammar (RFC 6874)")
            last = addr.rsplit(":", 1)[-1]
            if len(last) >= 4 and last.isdigit() and 1024 <= int(last) <= 65535 \
                    and text[m.end():m.end() + 1] != ":":
                self.warn(off + m.start(), "sip.uri.syntax",
                          f"[{addr}] has no port; if ':{last}' was meant as one it belongs "
                          "after ']' (RFC 5118 §4.3)")
        return ok

    def delta(self, digits: str, off: int, what: str) -> int:
        """delta-seconds value, reporting one beyond 2**32-1 (RFC 3261 §20.19, §25.1)."""
        value = _delta_value(digits)
        if value > _DELTA_LIMIT:
            self.err(off, "sip.value.oversized",
                     f"{what} {digits[:24]}{'...' if len(digits) > 24 else ''} exceeds 2**32-1 "
                     "(RFC 3261 §20.19, §25.1 delta-seconds)")
        return value

    def expires_params(self, value: str, off: int) -> None:
        for m in _RE_EXPIRES_PARAM.finditer(value):
            self.delta(m.group(1), off + m.start(1), "Contact expires")


# -- per-header checks: (checker, value, offset, key) ----------------------------------
def _h_via(c: _Checker, value: str, off: int, key: str) -> None:
    if not _RE_VIA.fullmatch(value):
        if not c.diagnose_list(value, off, key, c.diagnose_via):
            c.generic(off, key)
    else:
        if "[" in value:
            c.ipv6(value, off)
        if "eceived" in value or "ECEIVED" in value:
            _received(c, value, off)
    if "255.255.255.255" in value:
        c.warn(off + value.find("255.255.255.255"), "sip.via.broadcast",
               "Via sent-by is the broadcast address 255.255.255.255: responses must not go "
               "there (RFC 4475 §3.3.10)")


def _s_via(c: _Checker, value: str, off: int, key: str) -> None:
    if not c.seen_via:
        c.seen_via = True
        _top_branch(c, value, off)


def _top_branch(c: _Checker, value: str, off: int) -> None:
    comma = value.find(",")
    first = value if comma < 0 else value[:comma]
    m = _RE_BRANCH.search(first)
    if m is None:
        return
    branch = c.top_branch = m.group(1)
    if branch == _COOKIE:
        c.warn(off + m.start(1), "sip.via.branch",
               "branch is only the magic cookie z9hG4bK: no transaction id (RFC 4475 §3.2.1)")
    elif not branch.startswith(_COOKIE):
        c.warn(off + m.start(1), "sip.via.branch",
               f"branch {branch[:20]!r} lacks the z9hG4bK cookie: RFC 2543 transaction "
               "matching (RFC 3261 §8.1.1.7)")


def _received(c: _Checker, value: str, off: int) -> None:
    for m in _RE_RECEIVED.finditer(value):
        addr = m.group(1)
        if ":" in addr and not addr.startswith("["):
            try:
                ipaddress.IPv6Address(addr)
            except ValueError:
                c.err(off + m.start(1), "sip.header.syntax",
                      f"received={addr[:40]} is not an IP address (RFC 3261 §20.42, RFC 5118 §4.5)")


def _h_from_to(c: _Checker, value: str, off: int, key: str) -> None:
    if not _RE_ADDR.fullmatch(value):
        if not c.diagnose_addr(value, off, key):
            c.generic(off, key)
        return
    if "[" in value:
        c.ipv6(value, off)
    if key == "from" and c.is_request and _RE_TAG.search(value) is None:
        c.warn(off, "sip.from.tag", "request From without a tag parameter (RFC 3261 §8.1.1.3)")
    if key == "to" and c.method == "REGISTER":
        uri = _addr_uri(value)
        if uri[:4].lower() != "sip:" and uri[:5].lower() != "sips:":
            c.warn(off, "sip.uri.scheme",
                   "REGISTER To is not a SIP or SIPS URI: a registrar answers 400 (RFC 3261 §10.3)")


def _h_contact(c: _Checker, value: str, off: int, key: str) -> None:
    if value == "*":
        return  # only in REGISTER with Expires: 0 (_request_rules)
    if not _RE_CONTACT.fullmatch(value):
        if not c.diagnose_list(value, off, key, c.diagnose_addr):
            c.generic(off, key)
        return
    if "[" in value:
        c.ipv6(value, off)
    if "xpires" in value or "XPIRES" in value:
        c.expires_params(value, off)


def _h_route(c: _Checker, value: str, off: int, key: str) -> None:
    if not _RE_ROUTE.fullmatch(value):
        if not c.diagnose_list(value, off, key, c.diagnose_addr):
            c.generic(off, key)
        return
    c.ipv6(value, off)


def _h_call_id(c: _Checker, value: str, off: int, key: str) -> None:
    if not _RE_CALL_ID.fullmatch(value):
        c.err(off, "sip.header.syntax", "malformed Call-ID: expected word [ '@' word ] (RFC 3261 §20.8, §25.1)")


def _h_cseq(c: _Checker, value: str, off: int, key: str) -> None:
    m = _RE_CSEQ.fullmatch(value)
    if m is None:
        c.err(off, "sip.header.syntax", "malformed CSeq: expected '1*DIGIT LWS Method' (RFC 3261 §20.16)")
        return
    digits = m.group(1)
    if len(digits) > 10 or int(digits) >= _CSEQ_LIMIT:
        c.err(off, "sip.value.oversized",
              f"CSeq number {digits[:24]} is not below 2**31 (RFC 3261 §8.1.1.5)")


def _s_cseq(c: _Checker, value: str, off: int, key: str) -> None:
    if c.cseq is None:
        m = _RE_CSEQ.fullmatch(value)
        if m is not None:
            c.cseq = (m.group(2), off + m.start(2))


def _h_max_forwards(c: _Checker, value: str, off: int, key: str) -> None:
    if not _RE_DIGITS.fullmatch(value):
        c.err(off, "sip.header.syntax", "Max-Forwards is not 1*DIGIT (RFC 3261 §20.22)")
    elif len(value) > 10 or int(value) > 255:
        c.err(off, "sip.max-forwards", f"Max-Forwards {value[:24]} is above 255 (RFC 3261 §20.22)")
    elif int(value) == 0 and c.is_request:
        c.warn(off, "sip.max-forwards",
               "Max-Forwards is 0: a proxy must answer 483 Too Many Hops (RFC 3261 §16.3)")


def _h_content_length(c: _Checker, value: str, off: int, key: str) -> None:
    if not _RE_DIGITS.fullmatch(value):
        c.err(off, "sip.content-length.syntax",
              f"Content-Length {value[:24]!r} is not 1*DIGIT (RFC 3261 §20.14)")


def _s_content_length(c: _Checker, value: str, off: int, key: str) -> None:
    if c.content_length is None and _RE_DIGITS.fullmatch(value):
        c.content_length = (int(value) if len(value) < 20 else 2 ** 64, off)


def _h_content_type(c: _Checker, value: str, off: int, key: str) -> None:
    if not _RE_CONTENT_TYPE.fullmatch(value):
        c.generic(off, key)


def _s_content_type(c: _Checker, value: str, off: int, key: str) -> None:
    c.content_type_seen = True


def _h_expires(c: _Checker, value: str, off: int, key: str) -> None:
    if not _RE_DIGITS.fullmatch(value):
        c.generic(off, key)
    else:
        c.delta(value, off, pretty_name(key))


def _s_expires(c: _Checker, value: str, off: int, key: str) -> None:
    if _RE_DIGITS.fullmatch(value):
        c.expires = _delta_value(value)


def _s_contact(c: _Checker, value: str, off: int, key: str) -> None:
    if value == "*":
        c.contact_star = off


def _h_tokens(c: _Checker, value: str, off: int, key: str) -> None:
    if not _RE_TOKENS.fullmatch(value):
        c.generic(off, key)


def _h_tokens_opt(c: _Checker, value: str, off: int, key: str) -> None:
    if not _RE_TOKENS_OPT.fullmatch(value):
        c.generic(off, key)


def _h_accept(c: _Checker, value: str, off: int, key: str) -> None:
    if not _RE_ACCEPT.fullmatch(value):
        c.generic(off, key)


def _h_auth(c: _Checker, value: str, off: int, key: str) -> None:
    m = _RE_AUTH.fullmatch(value)
    if m is None:
        if _split_unquoted(value, ",") is None:
            c.err(off + value.find('"'), "sip.header.syntax",
                  f"unterminated quoted string in {pretty_name(key)} (RFC 3261 §25.1)")
        else:
            c.generic(off, key)
        return
    if m.group(1).lower() != "digest":
        return
    challenge = key.endswith("authenticate")
    for p in _RE_AUTH_PARAM.finditer(value, m.end(1)):
        name, quoted = p.group(1).lower(), p.group(2).startswith('"')
        if name in _DIGEST_QUOTED and not quoted:
            c.err(off + p.start(2), "sip.header.syntax",
                  f"Digest {name} must be a quoted-string (RFC 3261 §25.1)")
        elif name in _DIGEST_UNQUOTED and quoted:
            c.err(off + p.start(2), "sip.header.syntax",
                  f"Digest {name} must not be quoted (RFC 3261 §25.1)")
        elif name == "qop" and quoted != challenge:
            c.warn(off + p.start(2), "sip.header.syntax",
                   f"Digest qop {'must' if challenge else 'must not'} be quoted in "
                   f"{pretty_name(key)} (RFC 3261 §25.1 qop-options / message-qop)")


def _h_date(c: _Checker, value: str, off: int, key: str) -> None:
    if not _RE_DATE.fullmatch(value):
        zone = value.rsplit(" ", 1)[-1]
        why = (f"time zone {zone!r}: a SIP Date is always GMT" if zone.isalpha()
               and zone.upper() != "GMT" else "expected 'Wkd, DD Mon YYYY HH:MM:SS GMT'")
        c.err(off, "sip.header.syntax", f"malformed Date: {why} (RFC 3261 §20.17 rfc1123-date)")


def _h_retry_after(c: _Checker, value: str, off: int, key: str) -> None:
    m = _RE_RETRY_AFTER.fullmatch(value)
    if m is None:
        c.generic(off, key)
    else:
        c.delta(m.group(1), off, "Retry-After")


def _h_warning(c: _Checker, value: str, off: int, key: str) -> None:
    if _RE_WARNING.fullmatch(value):
        return
    spans = _list_spans(value) or [(0, len(value))]
    for s, e in spans:
        item = value[s:e].strip(" \t")
        code = item.split(" ", 1)[0]
        if not (len(code) == 3 and code.isdigit()):
            c.err(off + s, "sip.header.syntax",
                  f"warn-code {code[:12]!r} is not 3 digits (RFC 3261 §20.43)")
            return
    c.generic(off, key)


#: Per header key, the check of its value: pure, i.e. its problems depend on nothing but
#: (value, key, is_request, method == "REGISTER") and their offsets on ``off`` only by
#: addition, which is what lets :meth:`_Checker._plain_lines` memoise them per line.
_CHECKS: dict[str, Callable[[_Checker, str, int, str], None]] = {
    "via": _h_via, "from": _h_from_to, "to": _h_from_to, "contact": _h_contact,
    "route": _h_route, "record-route": _h_route, "call-id": _h_call_id, "cseq": _h_cseq,
    "max-forwards": _h_max_forwards, "content-length": _h_content_length,
    "content-type": _h_content_type, "expires": _h_expires, "min-expires": _h_expires,
    "require": _h_tokens, "proxy-require": _h_tokens, "unsupported": _h_tokens,
    "supported": _h_tokens_opt, "allow": _h_tokens_opt, "accept": _h_accept,
    "authorization": _h_auth, "proxy-authorization": _h_auth,
    "www-authenticate": _h_auth, "proxy-authenticate": _h_auth,
    "date": _h_date, "retry-after": _h_retry_after, "warning": _h_warning,
}

#: Per header key, what a line does to the message state (run for every line, after
#: the pure check): top Via branch, first CSeq and Content-Length, Content-Type seen,
#: Expires value, Contact: *.
_STATE: dict[str, Callable[[_Checker, str, int, str], None]] = {
    "via": _s_via, "cseq": _s_cseq, "content-length": _s_content_length,
    "content-type": _s_content_type, "expires": _s_expires, "contact": _s_contact,
}

_ALNUM = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
_USERINFO_CHARS = frozenset(_ALNUM + "-_.!~*'()&=+$,;?/:%")
_REASON_CHARS = frozenset(_ALNUM + "-_.!~*'();/?:@&=+$, \t%" + "".join(map(chr, range(0x80, 0x100))))
_RE_URI_PARAM = _c(rf"{_PARAMCHAR}+(?:={_PARAMCHAR}+)?")
_RE_URI_HEADERS = _c(_URI_HEADERS)


# -- small text helpers ----------------------------------------------------------------
def _offset(p: Problem) -> int:
    return p.offset


def _delta_value(digits: str) -> int:
    """The value of a delta-seconds (1*DIGIT), anything of 40 digits or more as 2**32."""
    return int(digits) if len(digits) < 40 else _DELTA_LIMIT + 1


def _lone_cr(head: str) -> int:
    i = head.find("\r")
    while i >= 0 and head[i + 1:i + 2] == "\n":
        i = head.find("\r", i + 1)
    return max(i, 0)


def _bare_lf(head: str) -> int:
    i = head.find("\n")
    while i > 0 and head[i - 1] == "\r":
        i = head.find("\n", i + 1)
    return max(i, 0)


def _first_ws(text: str) -> int:
    for i, ch in enumerate(text):
        if ch in " \t":
            return i
    return -1


def _first_bad(text: str, allowed: frozenset[str]) -> int:
    """Index of the first character of ``text`` not in ``allowed`` (or a bad escape); else len."""
    for i, ch in enumerate(text):
        if ch not in allowed or (ch == "%" and _RE_BAD_ESCAPE.match(text, i)):
            return i
    return len(text)


def _quote_end(text: str, start: int) -> int:
    """Index just past the quoted-string opening at ``text[start]``; -1 if unterminated."""
    try:
        return quoted_end(text, start) if start >= 0 else -1
    except ParseError:
        return -1


def _split_unquoted(text: str, sep: str) -> list[str] | None:
    """Split on ``sep`` outside quoted strings; None for an unterminated quote."""
    try:
        return split_unquoted(text, sep)
    except ParseError:
        return None


def _list_spans(value: str) -> list[tuple[int, int]] | None:
    """(start, end) of each comma-separated element outside quotes and <> (§7.3.1);
    None when a quote or '<' is left open."""
    try:
        return element_spans(value, ",", angle=True)
    except ParseError:
        return None


def _addr_uri(value: str) -> str:
    """The URI of a (name-addr / addr-spec) value, for scheme checks."""
    lt = value.find("<")
    if lt >= 0:
        return value[lt + 1:value.find(">", lt)]
    return value.split(";", 1)[0].strip()


def check_message(data: bytes) -> list[Problem]:
    """Every RFC 3261 problem in one SIP message, sorted by byte offset; never raises.

    ``data`` is one datagram or one framed stream message. Leading CRLFs are skipped
    (RFC 3261 §7.5); bodies are not parsed (see :func:`qa.sdp.strict.check_sdp`).
    """
    try:
        return _Checker(bytes(data)).run()
    except Exception as exc:  # safety net for "never raises"; the fuzz tests keep it unused
        return [Problem(0, "sip.internal", f"checker failed: {type(exc).__name__}: {exc}")]
