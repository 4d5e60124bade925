"""RTP fixed header, CSRC list, header extension and padding (RFC 3550 §5.1, §5.3.1)."""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

from qa.errors import ParseError

__all__ = ["RtpPacket", "RTP_VERSION"]

RTP_VERSION = 2
_FIXED = struct.Struct("!BBHII")  # V P X CC | M PT | sequence number | timestamp | SSRC
_EXT = struct.Struct("!HH")       # profile-defined | length in 32-bit words


@dataclass(slots=True)
class RtpPacket:
    """One RTP packet (RFC 3550 §5.1).

    ``padding_size`` is the number of padding octets including the final count octet
    (§5.1 P bit); on serialisation the padding is written as zeros plus the count
    octet, and ``padding=True`` with ``padding_size=0`` means one octet of padding. ``extension_profile`` /
    ``extension_data`` are the §5.3.1 header extension (``extension`` says whether
    one is present; ``extension_data`` length must be a multiple of 4).
    """

    version: int = RTP_VERSION
    padding: bool = False
    extension: bool = False
    marker: bool = False
    payload_type: int = 0
    sequence_number: int = 0
    timestamp: int = 0
    ssrc: int = 0
    csrc: list[int] = field(default_factory=list)
    extension_profile: int = 0
    extension_data: bytes = b""
    payload: bytes = b""
    padding_size: int = 0

    def __post_init__(self) -> None:
        if self.padding_size:
            self.padding = True

    @classmethod
    def parse(cls, data: bytes) -> RtpPacket:
        """Parse an RTP packet; ``ParseError`` if short, not version 2, or lengths lie."""
        n = len(data)
        if n < 12:
            raise ParseError(f"RTP packet of {n} octets is shorter than the 12-octet header", n)
        b0, b1, seq, ts, ssrc = _FIXED.unpack_from(data)
        version = b0 >> 6
        if version != RTP_VERSION:
            raise ParseError(f"RTP version {version}, expected 2", 0)
        cc = b0 & 0x0F
        pos = 12 + 4 * cc
        if pos > n:
            raise ParseError(f"CSRC count {cc} runs past the packet end", 12)
        csrc = list(struct.unpack_from(f"!{cc}I", data, 12)) if cc else []
        extension = bool(b0 & 0x10)
        profile, ext_data = 0, b""
        if extension:
            if pos + 4 > n:
                raise ParseError("header extension runs past the packet end", pos)
            profile, words = _EXT.unpack_from(data, pos)
            end = pos + 4 + 4 * words
            if end > n:
                raise ParseError(f"header extension of {words} words runs past the end", pos + 2)
            ext_data = bytes(data[pos + 4:end])
            pos = end
        end = n
        pad = 0
        if b0 & 0x20:
            pad = data[-1]
            if pad == 0 or pos + pad > n:
                raise ParseError(f"bad padding count {pad}", n - 1)
            end = n - pad
        return cls(version, bool(pad), extension, bool(b1 & 0x80), b1 & 0x7F, seq, ts, ssrc,
                   csrc, profile, ext_data, bytes(data[pos:end]), pad)

    def __bytes__(self) -> bytes:
        cc = len(self.csrc)
        if cc > 15:
            raise ValueError("at most 15 CSRC identifiers (RFC 3550 §5.1)")
        pad = self.padding_size or (1 if self.padding else 0)
        b0 = ((self.version & 3) << 6) | (0x20 if pad else 0) | cc
        if self.extension:
            b0 |= 0x10
        b1 = (0x80 if self.marker else 0) | (self.payload_type & 0x7F)
        out = [_FIXED.pack(b0, b1, self.sequence_number & 0xFFFF, self.timestamp & 0xFFFFFFFF,
                           self.ssrc & 0xFFFFFFFF)]
        if cc:
            out.append(struct.pack(f"!{cc}I", *self.csrc))
        if self.extension:
            if len(self.extension_data) % 4:
                raise ValueError("extension_data must be a multiple of 4 octets (§5.3.1)")
            out.append(_EXT.pack(self.extension_profile, len(self.extension_data) // 4))
            out.append(self.extension_data)
        out.append(self.payload)
        if pad:
            if not 0 < pad < 256:
                raise ValueError("padding_size must be 1..255")
            out.append(bytes(pad - 1) + bytes([pad]))
        return b"".join(out)
