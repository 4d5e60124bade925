"""Sans-I/O SDP (RFC 8866) and the offer/answer model (RFC 3264).

``SessionDescription.parse`` raises only :class:`qa.errors.ParseError`.
"""

from qa.sdp.model import (
    STATIC_PAYLOAD_TYPES, Connection, MediaDescription, Origin, RtpMap, SessionDescription,
    Timing,
)
from qa.sdp.offer_answer import DEFAULT_PAYLOAD_TYPES, make_offer, negotiate

__all__ = [
    "DEFAULT_PAYLOAD_TYPES", "STATIC_PAYLOAD_TYPES", "Connection", "MediaDescription",
    "Origin", "RtpMap", "SessionDescription", "Timing", "make_offer", "negotiate",
]
