"""Sans-I/O RTP (RFC 3550), DTMF events (RFC 4733) and G.711 (ITU-T G.711).

``RtpPacket.parse`` and ``DtmfEvent.parse`` raise only :class:`qa.errors.ParseError`.
"""

from qa.rtp.dtmf import EVENT_DIGITS, DtmfEvent, DtmfReceiver
from qa.rtp.g711 import alaw_decode, alaw_encode, tone, ulaw_decode, ulaw_encode
from qa.rtp.packet import RTP_VERSION, RtpPacket

__all__ = ["EVENT_DIGITS", "RTP_VERSION", "DtmfEvent", "DtmfReceiver", "RtpPacket",
           "alaw_decode", "alaw_encode", "tone", "ulaw_decode", "ulaw_encode"]
