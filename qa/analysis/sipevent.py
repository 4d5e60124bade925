"""From a leniently read SIP message to the :class:`~qa.analysis.calls.SipEvent` the call
tracker correlates: endpoints, CSeq, tags, branch, the SDP's audio targets (RFC 3264
§5: where the sender wants to receive, with which payload types) and a SIP INFO
DTMF digit (``qa.sip.info.info_digit``: the carrier decodes INFO bodies with it too)."""

from __future__ import annotations

from qa.analysis.calls import SipEvent
from qa.errors import ParseError
from qa.sdp import SessionDescription
from qa.sip.info import info_digit

__all__ = ["to_event", "sdp_media", "endpoint", "is_sdp"]


_ENDPOINTS: dict[tuple[str, int], str] = {}  # a capture has few endpoints: built once each


def endpoint(address: str, port: int) -> str:
    """``ip:port``, IPv6 addresses in brackets (RFC 3986 §3.2.2)."""
    found = _ENDPOINTS.get((address, port))
    if found is None:
        found = f"[{address}]:{port}" if ":" in address else f"{address}:{port}"
        if len(_ENDPOINTS) >= 4096:
            _ENDPOINTS.clear()
        _ENDPOINTS[address, port] = found
    return found


def sdp_media(body: bytes) -> list[tuple[str, int, dict[int, tuple[str, int]], int | None, str, list[str]]] | None:
    """Audio targets of an SDP body, or ``None`` when it does not parse (the strict
    checker reports why)."""
    try:
        sdp = SessionDescription.parse(body)
    except (ParseError, ValueError):
        return None
    out = []
    for m in sdp.media:
        if m.media != "audio":
            continue
        address = sdp.address_of(m) or ""
        rtpmap = {pt: (r.encoding, r.clock_rate) for pt, r in m.rtpmap.items()}
        out.append((address, m.port, rtpmap, m.ptime, sdp.direction_of(m), m.codec_names()))
    return out


def is_sdp(content_type: str | None) -> bool:
    return content_type is not None and content_type.split(";", 1)[0].strip().lower() == "application/sdp"


def to_event(msg, payload, *, keep_raw: bool = False, media_of=None,
             with_headers: bool = True) -> SipEvent:
    """Normalise a :class:`qa.sip.lenient.LenientMessage` seen in ``payload``;
    ``media_of`` replaces :func:`sdp_media` (the engine passes a memoised one).
    ``with_headers=False`` leaves ``headers`` out: the tracker reads them only for the
    first message of a Call-ID, and the lenient reader builds them on demand."""
    body = msg.body or b""
    sdp = body if body and is_sdp(msg.content_type) else None
    request = msg.kind == "request"
    method = (msg.method if request else msg.cseq_method) or msg.cseq_method or ""
    return SipEvent(
        frame=payload.frame, time=payload.time,
        src=endpoint(payload.src, payload.sport), dst=endpoint(payload.dst, payload.dport),
        transport=payload.transport, method=method, status=0 if request else (msg.status or 0),
        reason=msg.reason or "", call_id=msg.call_id, cseq=msg.cseq or 0,
        from_tag=msg.from_tag, to_tag=msg.to_tag, branch=msg.branch,
        headers=msg.headers if with_headers else None,
        sdp=sdp.decode("utf-8", "replace") if sdp is not None and keep_raw else None,
        media=(media_of or sdp_media)(sdp) if sdp is not None else None,
        info_digit=info_digit(msg.content_type, body) if method == "INFO" and request else None,
        raw=payload.data if keep_raw else None)
