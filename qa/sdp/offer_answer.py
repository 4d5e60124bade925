"""The SDP offer/answer model (RFC 3264): building offers and answers for audio calls."""

from __future__ import annotations

import time

from qa.sdp.model import (
    Connection, MediaDescription, Origin, RtpMap, SessionDescription, Timing,
)

__all__ = ["DEFAULT_PAYLOAD_TYPES", "make_offer", "negotiate"]

#: Payload types used by :func:`make_offer` (RFC 3551 §6 static ones, common dynamic ones).
DEFAULT_PAYLOAD_TYPES: dict[str, tuple[int, RtpMap, str | None]] = {
    "PCMU": (0, RtpMap("PCMU", 8000), None),
    "GSM": (3, RtpMap("GSM", 8000), None),
    "G723": (4, RtpMap("G723", 8000), None),
    "PCMA": (8, RtpMap("PCMA", 8000), None),
    "G722": (9, RtpMap("G722", 8000), None),
    "CN": (13, RtpMap("CN", 8000), None),
    "G729": (18, RtpMap("G729", 8000), "annexb=no"),
    "iLBC": (102, RtpMap("iLBC", 8000), "mode=30"),
    "opus": (111, RtpMap("opus", 48000, 2), "minptime=10;useinbandfec=1"),
    "telephone-event": (101, RtpMap("telephone-event", 8000), "0-16"),
}
_NOT_CODECS = frozenset({"telephone-event", "cn", "red", "ulpfec"})
_MIRROR = {"sendonly": "recvonly", "recvonly": "sendonly",
           "sendrecv": "sendrecv", "inactive": "inactive"}


def _session(address: str, session_id: int | None) -> SessionDescription:
    sid = session_id if session_id is not None else int(time.time() * 1000) & 0x7FFFFFFF
    conn = Connection.for_address(address)
    return SessionDescription(
        version=0,
        origin=Origin("-", sid, sid, "IN", conn.addrtype, address),
        session_name="-",
        connection=conn,
        timing=[Timing(0, 0)],
    )


def make_offer(codecs: list[str], *, address: str, port: int,
               session_id: int | None = None) -> SessionDescription:
    """An audio offer (RFC 3264 §5) listing ``codecs`` in order, with rtpmap/fmtp lines.

    Known names use :data:`DEFAULT_PAYLOAD_TYPES` (case-insensitive); other names get
    a free dynamic payload type (96-127) at 8000 Hz. Adds ``a=ptime:20`` and
    ``a=sendrecv``.
    """
    table = {k.lower(): v for k, v in DEFAULT_PAYLOAD_TYPES.items()}
    used = {table[c.lower()][0] for c in codecs if c.lower() in table}
    free = (pt for pt in range(96, 128) if pt not in used)
    formats: list[str] = []
    attributes: list[tuple[str, str | None]] = []
    fmtps: list[tuple[str, str | None]] = []
    for name in codecs:
        if name.lower() in table:
            pt, rtpmap, fmtp = table[name.lower()]
        else:
            pt = next(free, None)
            if pt is None:
                raise ValueError("no dynamic payload type left")
            rtpmap, fmtp = RtpMap(name, 8000), None
        if str(pt) in formats:
            continue
        formats.append(str(pt))
        attributes.append(("rtpmap", f"{pt} {rtpmap}"))
        if fmtp:
            fmtps.append(("fmtp", f"{pt} {fmtp}"))
    attributes += fmtps + [("ptime", "20"), ("sendrecv", None)]
    sdp = _session(address, session_id)
    sdp.media.append(MediaDescription("audio", port, "RTP/AVP", formats, None, attributes))
    return sdp


def _answer_media(offer: SessionDescription, m: MediaDescription,
                  accept: set[str], port: int) -> MediaDescription | None:
    """The accepted answer for one offered audio stream, or ``None`` if nothing in common."""
    rtpmap = m.rtpmap
    fmtp = m.fmtp
    keep = [f for f in m.formats if f.isdigit() and f.isascii() and int(f) in rtpmap
            and rtpmap[int(f)].encoding.lower() in accept]
    if not any(rtpmap[int(f)].encoding.lower() not in _NOT_CODECS for f in keep):
        return None
    attributes: list[tuple[str, str | None]] = []
    for f in keep:
        attributes.append(("rtpmap", f"{f} {rtpmap[int(f)]}"))
    for f in keep:
        if int(f) in fmtp:
            attributes.append(("fmtp", f"{f} {fmtp[int(f)]}"))
    for name in ("ptime", "maxptime"):
        value = m.attribute(name)
        if value:
            attributes.append((name, value))
    attributes.append((_MIRROR[offer.direction_of(m)], None))
    return MediaDescription("audio", port, m.proto, keep, None, attributes)


def negotiate(offer: SessionDescription, accept: list[str], *, address: str, port: int,
              session_id: int | None = None) -> SessionDescription | None:
    """Answer ``offer`` (RFC 3264 §6), or ``None`` when no audio codec is in common (488).

    The first audio stream with a codec in ``accept`` (encoding names,
    case-insensitive) is accepted on ``port``, keeping the offer's payload type
    numbers and order (§6.1); telephone-event/CN are kept only if listed in ``accept``
    and do not count as a codec in common. Every other stream is rejected with port 0
    (§6, same number of m= lines). Direction is mirrored (sendonly -> recvonly, §6.1).
    """
    wanted = {c.lower() for c in accept}
    answer = _session(address, session_id)
    accepted = False
    for m in offer.media:
        chosen = None
        if not accepted and m.media == "audio" and m.port != 0:
            chosen = _answer_media(offer, m, wanted, port)
        if chosen is None:
            chosen = MediaDescription(m.media, 0, m.proto, list(m.formats))
        else:
            accepted = True
        answer.media.append(chosen)
    return answer if accepted else None
