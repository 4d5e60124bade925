"""The torture messages and their verdicts, sans I/O: each crafted request breaks one rule of RFC 3261 (or
strains a transport), built from a well-formed request by a function named for its defect;
and the reader of a directory of extra messages (``--torture-dir``: ``*.dat`` files, e.g.
RFC 4475's, with an optional ``INDEX.tsv``); and the judging of what came back. Bytes in,
bytes out: :mod:`qa.security.torture` does the sending.
"""

from __future__ import annotations

import csv
import io
import random
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from qa.errors import BadInput
from qa.security.model import AttackResult
from qa.security.target import SecurityTarget
from qa.sip import Request, parse_via

#: how long a TCP connection that announced a huge body is held open before we close it
TCP_HOLD_S = 1.0
#: the garbage generator's seed: the same bytes on every run
SEED = 4475
UDP_OVERSIZE = 60 * 1024           # one header of 60 KB: the datagram stays under 65,507 bytes
TCP_OVERSIZE = 100 * 1024          # over TCP: beyond any 64 KB receive buffer
HUGE_CONTENT_LENGTH = 2**31 - 1    # the body announced on TCP; a few bytes follow
FRAGMENTED_SIZE = 3000             # the OPTIONS sent as IP fragments
MAX_UDP = 65507                    # the largest IPv4 UDP payload
MAX_CORPUS = 100                   # *.dat files in a torture directory: the attack stays bounded
#: finals that refuse a malformed message besides 4xx (RFC 3261 §21.5.7, §21.5.14)
VERSION_REFUSED, TOO_LARGE = 505, 513

Expect = Literal["reject", "answer", "none"]
Builder = Callable[[Request], bytes]


# -- generators ---------------------------------------------------------------------------------

def garbage(seed: int, size: int) -> bytes:
    """``size`` pseudo-random octets, the same for the same seed (a reproducible attack)."""
    return random.Random(seed).randbytes(size)


def split_message(data: bytes) -> tuple[list[bytes], bytes]:
    """(start line and header lines, body) of a message we built (CRLF, RFC 3261 §7)."""
    head, _, body = data.partition(b"\r\n\r\n")
    return head.split(b"\r\n"), body


def set_header(data: bytes, name: str, *values: str | bytes) -> bytes:
    """``data`` with every ``name`` line replaced by one line per value where the first one
    was (no value: removed; absent: appended). The body and Content-Length are kept as they
    are, so a value may break the framing on purpose."""
    lines, body = split_message(data)
    key = name.lower().encode()
    new = [name.encode() + b": " + (v if isinstance(v, bytes) else v.encode()) for v in values]
    out, placed = [lines[0]], False
    for line in lines[1:]:
        if line.split(b":", 1)[0].strip().lower() == key:
            if not placed:
                out.extend(new)
                placed = True
            continue
        out.append(line)
    if not placed:
        out.extend(new)
    return b"\r\n".join(out) + b"\r\n\r\n" + body


def with_content_length(data: bytes, value: int | str) -> bytes:
    """``data`` announcing ``value`` as its Content-Length, whatever its body (RFC 3261 §20.14)."""
    return set_header(data, "Content-Length", str(value))


def with_body(data: bytes, body: bytes) -> bytes:
    """``data`` with ``body`` instead of its own and a Content-Length that matches it."""
    lines, _ = split_message(data)
    return with_content_length(b"\r\n".join(lines) + b"\r\n\r\n" + body, len(body))


def padded(data: bytes, size: int, name: str = "X-Torture-Padding") -> bytes:
    """``data`` grown to ``size`` octets by one extra header line of 'a's (at least one)."""
    fill = max(1, size - len(data) - len(name) - 4)
    return set_header(data, name, "a" * fill)


def broken_sdp(address: str) -> bytes:
    """An "offer" that is no SDP: no v= line first (RFC 8866 §5) and an m= port that is not a
    number (§5.14). A platform that relays media offers must refuse it, not pass it on."""
    return (f"o=- 1 1 IN IP4 {address}\r\ns=-\r\nc=IN IP4 {address}\r\nt=0 0\r\n"
            "m=audio forty RTP/AVP 0\r\n").encode()


# -- the crafted messages -----------------------------------------------------------------------

def _cl_larger(req: Request) -> bytes:
    return with_content_length(bytes(req), len(req.body) + 1000)


def _cl_negative(req: Request) -> bytes:
    return with_content_length(bytes(req), "-42")


def _cl_huge(req: Request) -> bytes:
    return with_content_length(bytes(req), HUGE_CONTENT_LENGTH)


def _cseq_method(req: Request) -> bytes:
    return set_header(bytes(req), "CSeq", f"{req.cseq[0]} OPTIONS")


def _cseq_overflow(req: Request) -> bytes:
    return set_header(bytes(req), "CSeq", f"{2**65} {req.method}")


def _max_forwards_300(req: Request) -> bytes:
    return set_header(bytes(req), "Max-Forwards", "300")


def _unterminated_display(req: Request) -> bytes:
    return set_header(bytes(req), "To", '"Bob ' + (req.headers.get("To") or ""))


def _no_call_id(req: Request) -> bytes:
    return set_header(bytes(req), "Call-ID")


def _sip_7(req: Request) -> bytes:
    lines, body = split_message(bytes(req))
    lines[0] = lines[0].replace(b" SIP/2.0", b" SIP/7.0")
    return b"\r\n".join(lines) + b"\r\n\r\n" + body


def _bad_utf8(req: Request) -> bytes:
    # C3 28: a lead byte without its continuation; FF FE: never in UTF-8 (RFC 3629 §3)
    return set_header(bytes(req), "From", b'"\xc3\x28 \xff\xfe" ' + (req.headers.get("From") or "").encode())


def _nul(req: Request) -> bytes:
    return set_header(bytes(req), "Subject", b"torture\x00\x00nul")


def _oversized(size: int) -> Builder:
    return lambda req: set_header(bytes(req), "X-Torture-Padding", "a" * size)


def _garbage(req: Request) -> bytes:
    return garbage(SEED, 1024)


def _garbage_after_line(req: Request) -> bytes:
    return f"{req.method} {req.uri} SIP/2.0\r\n".encode() + garbage(SEED + 1, 1024)


def _conflicting_call_id(req: Request) -> bytes:
    call_id = req.headers.get("Call-ID") or ""
    return set_header(bytes(req), "Call-ID", call_id, "other-" + call_id)


def _conflicting_to(req: Request) -> bytes:
    to = req.headers.get("To") or ""
    domain = to.split("@", 1)[-1].split(">", 1)[0]
    return set_header(bytes(req), "To", to, f"<sip:somebody-else@{domain}>")


def _two_to_tags(req: Request) -> bytes:
    return set_header(bytes(req), "To", (req.headers.get("To") or "") + ";tag=1;tag=2")


def _expires_word(req: Request) -> bytes:
    return set_header(bytes(req), "Expires", "soon")


def _broken_sdp(req: Request) -> bytes:
    return with_body(bytes(req), broken_sdp(parse_via(req.headers.get("Via") or "").host))


def _minimal(req: Request) -> bytes:
    """Only what RFC 3261 §8.1.1 makes mandatory: fewer bytes, so fewer segments one by one."""
    return set_header(set_header(bytes(req), "Contact"), "User-Agent")


def _fragmented(req: Request) -> bytes:
    return padded(bytes(req), FRAGMENTED_SIZE)


@dataclass(frozen=True)
class Spec:
    """One crafted message: made from a well-formed request (``method``: an INVITE to the
    reject number with an SDP offer, or an OPTIONS to the platform itself) by ``build``.

    ``mode``: ``plain`` (one datagram / one write), ``hold`` (TCP, held open
    :data:`TCP_HOLD_S` then closed), ``bytewise`` (TCP, one byte per segment),
    ``fragments`` (UDP as IP fragments). ``expect``: ``reject`` (4xx or silence) or
    ``answer`` (a valid message: a final answer proves the platform reassembled it).
    """

    name: str
    defect: str
    build: Builder
    method: str = "INVITE"
    transport: Literal["udp", "tcp"] = "udp"
    mode: Literal["plain", "hold", "bytewise", "fragments"] = "plain"
    authenticated: bool = False
    expect: Expect = "reject"
    also_ok: frozenset[int] = frozenset()


SPECS: tuple[Spec, ...] = (
    # authenticated first: what they might set going (100 Trying) runs while the rest is sent
    Spec("auth-cseq-method", "CSeq method OPTIONS on an INVITE (RFC 3261 §8.1.1.5)", _cseq_method,
         authenticated=True),
    Spec("auth-content-length-larger", "Content-Length 1000 octets beyond the datagram (RFC 3261 §18.3)",
         _cl_larger, authenticated=True),
    Spec("auth-broken-sdp", "application/sdp body without v= and with a port 'forty' (RFC 8866 §5, §5.14)",
         _broken_sdp, authenticated=True),
    Spec("auth-conflicting-call-id", "two different Call-ID headers (RFC 3261 §7.3.1, §20.8)",
         _conflicting_call_id, authenticated=True),
    Spec("auth-conflicting-to", "two different To headers (RFC 3261 §7.3.1, §20.39)", _conflicting_to,
         authenticated=True),
    Spec("auth-two-to-tags", "a To with two tag parameters (RFC 3261 §19.3, §20.39)", _two_to_tags,
         authenticated=True),
    Spec("auth-expires-not-a-number", "Expires: soon (delta-seconds, RFC 3261 §20.19)", _expires_word,
         authenticated=True),
    Spec("auth-max-forwards-300", "Max-Forwards 300 (0-255, RFC 3261 §20.22)", _max_forwards_300,
         authenticated=True),
    # unauthenticated, UDP
    Spec("content-length-larger", "Content-Length 1000 octets beyond the datagram (RFC 3261 §18.3)", _cl_larger),
    Spec("content-length-negative", "Content-Length -42 (1*DIGIT, RFC 3261 §20.14)", _cl_negative),
    Spec("cseq-method-mismatch", "CSeq method OPTIONS on an INVITE (RFC 3261 §8.1.1.5)", _cseq_method),
    Spec("cseq-overflow", "CSeq number 2^65 (below 2^31, RFC 3261 §8.1.1.5)", _cseq_overflow),
    Spec("max-forwards-300", "Max-Forwards 300 (0-255, RFC 3261 §20.22)", _max_forwards_300),
    Spec("unterminated-display-name", 'To display name opened with " and never closed (RFC 3261 §25.1)',
         _unterminated_display),
    Spec("missing-call-id", "no Call-ID (mandatory, RFC 3261 §8.1.1.4)", _no_call_id),
    Spec("sip-version-7", "Request-Line version SIP/7.0 (RFC 3261 §7.1; 505 allowed)", _sip_7,
         also_ok=frozenset({VERSION_REFUSED})),
    Spec("bad-utf8-display-name", "From display name with octets that are no UTF-8 (RFC 3261 §25.1, RFC 3629)",
         _bad_utf8),
    Spec("nul-in-header", "NUL octets inside a Subject value (RFC 3261 §25.1 TEXT-UTF8)", _nul),
    Spec("oversized-header-udp", "one 60 KB header in one datagram (RFC 3261 §18.1.1)",
         _oversized(UDP_OVERSIZE), also_ok=frozenset({TOO_LARGE})),
    Spec("garbage-random", f"1024 random octets (seed {SEED})", _garbage),
    Spec("garbage-after-request-line", f"a Request-Line, then 1024 random octets (seed {SEED + 1})",
         _garbage_after_line),
    # unauthenticated, TCP
    Spec("oversized-header-tcp", "one 100 KB header over TCP (RFC 3261 §18.3)", _oversized(TCP_OVERSIZE),
         transport="tcp", also_ok=frozenset({TOO_LARGE})),
    Spec("huge-content-length-tcp", f"Content-Length {HUGE_CONTENT_LENGTH} and a short body, connection held "
         f"{TCP_HOLD_S:g} s (RFC 3261 §18.3)", _cl_huge, transport="tcp", mode="hold",
         also_ok=frozenset({TOO_LARGE})),
    # valid messages the transport breaks up: the platform must put them together again
    Spec("tcp-byte-by-byte", "a valid OPTIONS, one byte per TCP segment (RFC 3261 §18.3 framing)", _minimal,
         method="OPTIONS", transport="tcp", mode="bytewise", expect="answer"),
    Spec("udp-fragments", f"a valid OPTIONS of {FRAGMENTED_SIZE} octets as IP fragments (RFC 791)", _fragmented,
         method="OPTIONS", mode="fragments", expect="answer"),
)


# -- a torture directory (*.dat, INDEX.tsv) ------------------------------------------------------

@dataclass(frozen=True)
class CorpusMessage:
    """One raw message of a torture directory; ``expected`` from INDEX.tsv ('' when unlisted).
    Only an ``invalid...`` one is judged ``rejected``; all are judged by health and witnesses."""

    name: str
    data: bytes
    expected: str = ""
    section: str = ""
    description: str = ""

    @property
    def judged(self) -> bool:
        return self.expected.startswith("invalid")


INDEX_COLUMNS = ("name", "expected")


def read_index(path: Path) -> dict[str, dict[str, str]]:
    """INDEX.tsv (tab-separated, a header row with at least name and expected; rfc_section
    and description are optional): row by name. BadInput naming the file and the problem."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise BadInput(f"torture directory: cannot read {path}: {exc}") from None
    reader = csv.DictReader(io.StringIO(text), delimiter="\t")
    missing = [c for c in INDEX_COLUMNS if c not in (reader.fieldnames or [])]
    if missing:
        raise BadInput(f"{path}: no column {missing[0]!r} in the header row "
                       f"(tab-separated: name, rfc_section, expected, description)")
    rows: dict[str, dict[str, str]] = {}
    for number, row in enumerate(reader, start=2):
        name = (row.get("name") or "").strip()
        if not name:
            raise BadInput(f"{path}: line {number}: empty name")
        if name in rows:
            raise BadInput(f"{path}: line {number}: {name!r} is listed twice")
        rows[name] = {k: (v or "").strip() for k, v in row.items() if k}
    return rows


def read_corpus(directory: Path) -> list[CorpusMessage]:
    """Every ``*.dat`` of ``directory`` (sorted), with what INDEX.tsv says of it. BadInput for
    a missing directory, no message, too many, an empty one, one too large for a datagram,
    or an INDEX.tsv row naming no file."""
    if not directory.is_dir():
        raise BadInput(f"torture directory {directory}: not a directory")
    files = sorted(directory.glob("*.dat"))
    if not files:
        raise BadInput(f"torture directory {directory}: no *.dat message in it")
    if len(files) > MAX_CORPUS:
        raise BadInput(f"torture directory {directory}: {len(files)} messages, at most {MAX_CORPUS} "
                       f"(the attack stays bounded)")
    index = read_index(directory / "INDEX.tsv") if (directory / "INDEX.tsv").exists() else {}
    if unknown := sorted(set(index) - {f.stem for f in files}):
        raise BadInput(f"{directory / 'INDEX.tsv'}: {unknown[0]!r} has no {unknown[0]}.dat")
    return [_corpus_message(path, index.get(path.stem, {})) for path in files]


def _corpus_message(path: Path, row: dict[str, str]) -> CorpusMessage:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise BadInput(f"torture message {path}: cannot read it: {exc}") from None
    if not data:
        raise BadInput(f"torture message {path}: empty")
    if len(data) > MAX_UDP:
        raise BadInput(f"torture message {path}: {len(data)} octets, more than one UDP datagram holds ({MAX_UDP})")
    return CorpusMessage(path.stem, data, row.get("expected", ""), row.get("rfc_section", ""),
                         row.get("description", ""))


# -- judging --------------------------------------------------------------------------------------

@dataclass
class Outcome:
    """One message on the wire: what was sent, what came back (status lines, in order) and
    whether the platform was healthy after it."""

    name: str
    transport: str
    expect: Expect = "reject"
    also_ok: frozenset[int] = frozenset()
    authenticated: bool = False
    defect: str = ""
    sent: int = 0
    replies: list[tuple[int, str]] = field(default_factory=list)
    health: bool | None = None
    health_detail: str = ""
    call_ids: list[str] = field(default_factory=list)
    note: str | None = None            # not sent (and why), or what the transport did
    reached_carrier: bool = False
    billed: bool = False

    @property
    def statuses(self) -> list[int]:
        return [s for s, _ in self.replies]

    def reply_line(self) -> str:
        """What came back: the status lines in order, or 'dropped'."""
        return ", ".join(f"{s} {r}".strip() for s, r in self.replies) or "dropped"

    def short(self) -> str:
        """What came back in a check's line: provisional codes, then the finals with reasons."""
        return ", ".join(str(s) if s < 200 else f"{s} {r}".strip() for s, r in self.replies) or "dropped"

    def verdict(self) -> tuple[bool, str]:
        return judge(self.statuses, expect=self.expect, also_ok=self.also_ok)

    def to_evidence(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "name": self.name, "transport": self.transport, "bytes": self.sent, "authenticated": self.authenticated,
            "defect": self.defect, "reply": self.note if self.sent == 0 and self.note else self.reply_line(),
            "health_after": self.health_detail or None, "expect": self.expect, "call_ids": self.call_ids}
        if self.sent and self.note:
            out["note"] = self.note
        if self.expect != "none" and self.sent:
            out["ok"] = self.verdict()[0]
        if self.reached_carrier:
            out["reached_carrier"] = True
        if self.billed:
            out["billed"] = True
        return out


def judge(statuses: Sequence[int], *, expect: Expect = "reject", also_ok: Iterable[int] = ()) -> tuple[bool, str]:
    """Is this answer right for the message, and why (RFC 3261 §8.2: a malformed request gets
    a 4xx, 400 ideally, or nothing)? A 1xx other than 100 or any 2xx accepts the message; 100
    Trying followed by a 4xx is fine, 100 and no final answer means it was taken on. A valid
    message (``answer``) needs a final answer that is not 400."""
    finals = [s for s in statuses if s >= 200]
    if expect == "none":
        return True, "not judged"
    if expect == "answer":
        if not finals:
            return False, "no final answer (not reassembled?)"
        return (finals[0] != 400, f"answered {finals[0]}" + (" (taken as malformed)" if finals[0] == 400 else ""))
    if progress := [s for s in statuses if 100 < s < 200]:
        return False, f"answered {progress[0]}: a malformed request went on"
    if not finals:
        if 100 in statuses:
            return False, "100 Trying and no final answer: taken on"
        return True, "dropped"
    first = finals[0]
    if 400 <= first < 500 or first in set(also_ok):
        return True, f"answered {first}"
    return False, f"answered {first}, not a 4xx"


def record_checks(result: AttackResult, outcomes: Sequence[Outcome]) -> None:
    """``rejected`` (malformed: 4xx or dropped), ``reassembled`` (valid, broken up by the
    transport: answered) and ``health`` (answered after every message, nothing down)."""
    sent = [o for o in outcomes if o.sent]
    malformed = [o for o in sent if o.expect == "reject"]
    if malformed:
        bad = [f"{o.name}: {o.short()} ({o.verdict()[1]})" for o in malformed if not o.verdict()[0]]
        dropped = sum(1 for o in malformed if not [s for s in o.statuses if s >= 200])
        result.check("rejected", not bad, "; ".join(bad) if bad else
                     f"all {len(malformed)} malformed messages refused ({len(malformed) - dropped} answered 4xx, "
                     f"{dropped} dropped)")
    if whole := [o for o in sent if o.expect == "answer"]:
        lines = [f"{o.name}: {o.reply_line()}" for o in whole]
        result.check("reassembled", all(o.verdict()[0] for o in whole), "; ".join(lines))
    sick = [f"{o.name} ({o.health_detail})" for o in sent if o.health is False]
    result.check("health", not sick, "unhealthy after " + ", ".join(sick) if sick else
                 f"customer OPTIONS answered and no process down after each of {len(sent)} messages")


def record_witnesses(target: SecurityTarget, result: AttackResult, outcomes: Sequence[Outcome]) -> None:
    """``carrier`` (no Call-ID of ours in the carrier's CDRs) and ``billing`` (none in the
    platform's), each only when the environment has that witness."""
    ids = sorted({c for o in outcomes for c in o.call_ids})
    witnesses = (("carrier", target.has_carrier_witness, target.carrier_rows, "reached_carrier", "reached the carrier",
                  "no carrier leg"),
                 ("billing", target.has_billing_witness, target.billed_rows, "billed", "billed", "no CDR"))
    for check, present, rows, flag, got, none in witnesses:
        if not present:
            result.evidence[check] = f"no {check} witness: whether a message {got} is unknown"
            continue
        hit = _matched(rows(ids), ids)
        for o in outcomes:
            setattr(o, flag, bool(hit & set(o.call_ids)))
        names = [o.name for o in outcomes if getattr(o, flag)]
        result.check(check, not names, f"{got}: {', '.join(names)}" if names else f"{none} for any of {len(ids)} Call-IDs")


def _matched(rows: Iterable[dict[str, Any]], ids: Iterable[str]) -> set[str]:
    """The Call-IDs of ours that ``rows`` name (in any column: carrier rows are verbatim)."""
    wanted = set(ids)
    return {str(v) for row in rows for v in row.values() if str(v) in wanted}


_CALL_ID_RE = re.compile(rb"(?im)^(?:call-id|i)[ \t]*:[ \t]*([^\r\n]*?)[ \t]*\r?$")


def call_ids_of(data: bytes) -> list[str]:
    """Every Call-ID header value in ``data`` (a message may carry none, or two)."""
    head = data.split(b"\r\n\r\n", 1)[0]
    return [m.decode("utf-8", "replace") for m in _CALL_ID_RE.findall(head) if m]
