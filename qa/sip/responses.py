"""Building responses and fresh identifiers (RFC 3261 §8.1.1, §8.2.6, §21)."""

from __future__ import annotations

import secrets
from collections.abc import Iterable

from qa.sip.fields import parse_name_addr
from qa.sip.headers import Headers
from qa.sip.message import Request, Response

__all__ = ["REASON_PHRASES", "make_response", "new_branch", "new_tag", "new_call_id",
           "MAGIC_COOKIE"]

#: RFC 3261 §8.1.1.7: branch IDs of RFC 3261 elements start with this.
MAGIC_COOKIE = "z9hG4bK"

#: Default reason phrases: RFC 3261 §21 plus later registrations (IANA SIP Response Codes).
REASON_PHRASES: dict[int, str] = {
    100: "Trying", 180: "Ringing", 181: "Call Is Being Forwarded", 182: "Queued",
    183: "Session Progress", 199: "Early Dialog Terminated",
    200: "OK", 202: "Accepted", 204: "No Notification",
    300: "Multiple Choices", 301: "Moved Permanently", 302: "Moved Temporarily",
    305: "Use Proxy", 380: "Alternative Service",
    400: "Bad Request", 401: "Unauthorized", 402: "Payment Required", 403: "Forbidden",
    404: "Not Found", 405: "Method Not Allowed", 406: "Not Acceptable",
    407: "Proxy Authentication Required", 408: "Request Timeout", 410: "Gone",
    412: "Conditional Request Failed", 413: "Request Entity Too Large",
    414: "Request-URI Too Long", 415: "Unsupported Media Type",
    416: "Unsupported URI Scheme", 417: "Unknown Resource-Priority", 420: "Bad Extension",
    421: "Extension Required", 422: "Session Interval Too Small", 423: "Interval Too Brief",
    428: "Use Identity Header", 429: "Provide Referrer Identity", 433: "Anonymity Disallowed",
    436: "Bad Identity-Info", 437: "Unsupported Certificate", 438: "Invalid Identity Header",
    439: "First Hop Lacks Outbound Support", 440: "Max-Breadth Exceeded",
    469: "Bad Info Package", 470: "Consent Needed",
    480: "Temporarily Unavailable", 481: "Call/Transaction Does Not Exist",
    482: "Loop Detected", 483: "Too Many Hops", 484: "Address Incomplete",
    485: "Ambiguous", 486: "Busy Here", 487: "Request Terminated",
    488: "Not Acceptable Here", 489: "Bad Event", 491: "Request Pending",
    493: "Undecipherable", 494: "Security Agreement Required",
    500: "Server Internal Error", 501: "Not Implemented", 502: "Bad Gateway",
    503: "Service Unavailable", 504: "Server Time-out", 505: "Version Not Supported",
    513: "Message Too Large", 555: "Push Notification Service Not Supported",
    580: "Precondition Failure",
    600: "Busy Everywhere", 603: "Decline", 604: "Does Not Exist Anywhere",
    606: "Not Acceptable", 607: "Unwanted", 608: "Rejected",
}

_CLASS_REASON = {1: "Trying", 2: "OK", 3: "Redirection", 4: "Client Error",
                 5: "Server Error", 6: "Global Failure"}


def reason_phrase(status: int) -> str:
    """Default reason phrase for ``status``, falling back to its class (§21)."""
    return REASON_PHRASES.get(status) or _CLASS_REASON.get(status // 100, "Unknown")


def new_branch() -> str:
    """A fresh Via branch starting with the magic cookie (RFC 3261 §8.1.1.7)."""
    return MAGIC_COOKIE + secrets.token_hex(10)


def new_tag() -> str:
    """A fresh From/To tag with >= 32 bits of randomness (RFC 3261 §19.3)."""
    return secrets.token_hex(6)


def new_call_id(host: str) -> str:
    """A fresh globally unique ``Call-ID`` ``random@host`` (RFC 3261 §8.1.1.4)."""
    return f"{secrets.token_hex(12)}@{host}"


def make_response(request: Request, status: int, reason: str | None = None, *,
                  to_tag: str | None = None, headers: Iterable[tuple[str, str]] = (),
                  body: bytes = b"") -> Response:
    """Build a response to ``request`` (RFC 3261 §8.2.6.2).

    Copies every Via (in order), From, To, Call-ID and CSeq; adds ``to_tag`` to To if
    it has no tag yet; copies Record-Route into 101-299 responses to INVITE
    (§12.1.1); appends ``headers``. Content-Length is computed on serialisation.
    """
    src = request.headers
    out = Headers()
    for name, value in src:
        if name.lower() in ("via", "v"):
            out.add("Via", value)
    out.add("From", src.get("from") or "")
    to = src.get("to") or ""
    if to_tag is not None and parse_name_addr(to).tag is None:
        to = f"{to};tag={to_tag}"
    out.add("To", to)
    out.add("Call-ID", src.get("call-id") or "")
    out.add("CSeq", src.get("cseq") or "")
    if request.method == "INVITE" and 100 < status < 300:
        for value in src.lines("record-route"):
            out.add("Record-Route", value)
    for name, value in headers:
        out.add(name, value)
    return Response(status, reason if reason is not None else reason_phrase(status), out, body)
