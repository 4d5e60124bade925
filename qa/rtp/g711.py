"""G.711 μ-law and A-law companding (ITU-T G.711), table-based, over bytes.

Linear audio is 16-bit signed little-endian PCM (``array('h')`` layout on
little-endian hosts; byte-swapped explicitly so results do not depend on the host).
"""

from __future__ import annotations

import math
import struct
import sys
from array import array

__all__ = ["ulaw_encode", "ulaw_decode", "alaw_encode", "alaw_decode", "tone",
           "ULAW_SILENCE", "ALAW_SILENCE"]

ULAW_SILENCE = 0xFF
ALAW_SILENCE = 0xD5
_BIAS = 0x84
_SEG_UEND = (0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF, 0x1FFF)
_SEG_AEND = (0x1F, 0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF)


def _segment(value: int, ends: tuple[int, ...]) -> int:
    for seg, end in enumerate(ends):
        if value <= end:
            return seg
    return len(ends)


def _ulaw_from_linear(sample: int) -> int:
    """One 16-bit sample -> μ-law octet (G.711 §3, as in the reference g711.c)."""
    pcm = sample >> 2
    if pcm < 0:
        pcm, mask = -pcm, 0x7F
    else:
        mask = 0xFF
    pcm = min(pcm, 8159) + (_BIAS >> 2)
    seg = _segment(pcm, _SEG_UEND)
    if seg >= 8:
        return 0x7F ^ mask
    return ((seg << 4) | ((pcm >> (seg + 1)) & 0x0F)) ^ mask


def _ulaw_to_linear(octet: int) -> int:
    u = ~octet & 0xFF
    t = (((u & 0x0F) << 3) + _BIAS) << ((u & 0x70) >> 4)
    return _BIAS - t if u & 0x80 else t - _BIAS


def _alaw_from_linear(sample: int) -> int:
    """One 16-bit sample -> A-law octet (G.711 §2, as in the reference g711.c)."""
    pcm = sample >> 3
    if pcm >= 0:
        mask = 0xD5
    else:
        mask, pcm = 0x55, -pcm - 1
    seg = _segment(pcm, _SEG_AEND)
    if seg >= 8:
        return 0x7F ^ mask
    aval = seg << 4
    aval |= ((pcm >> 1) if seg < 2 else (pcm >> seg)) & 0x0F
    return aval ^ mask


def _alaw_to_linear(octet: int) -> int:
    a = octet ^ 0x55
    t = (a & 0x0F) << 4
    seg = (a & 0x70) >> 4
    if seg == 0:
        t += 8
    elif seg == 1:
        t += 0x108
    else:
        t = (t + 0x108) << (seg - 1)
    return t if a & 0x80 else -t


# Decode: octet -> 2 little-endian bytes. Encode: indexed by the sample's top bits.
_ULAW_DEC = [struct.pack("<h", _ulaw_to_linear(i)) for i in range(256)]
_ALAW_DEC = [struct.pack("<h", _alaw_to_linear(i)) for i in range(256)]
_ULAW_ENC = bytes(_ulaw_from_linear((i - 8192) << 2) for i in range(16384))
_ALAW_ENC = bytes(_alaw_from_linear((i - 4096) << 3) for i in range(8192))


def pcm_samples(pcm: bytes | array) -> array:
    """16-bit little-endian PCM octets as signed samples (an array passes through)."""
    if isinstance(pcm, array):
        return pcm
    if len(pcm) % 2:
        raise ValueError("16-bit PCM must have an even number of octets")
    samples = array("h")
    samples.frombytes(pcm)
    if sys.byteorder == "big":
        samples.byteswap()
    return samples


def ulaw_encode(pcm: bytes) -> bytes:
    """16-bit signed LE PCM -> μ-law octets (ITU-T G.711)."""
    table = _ULAW_ENC
    return bytes([table[(s >> 2) + 8192] for s in pcm_samples(pcm)])


def ulaw_decode(data: bytes) -> bytes:
    """μ-law octets -> 16-bit signed LE PCM (ITU-T G.711)."""
    return b"".join(map(_ULAW_DEC.__getitem__, data))


def alaw_encode(pcm: bytes) -> bytes:
    """16-bit signed LE PCM -> A-law octets (ITU-T G.711)."""
    table = _ALAW_ENC
    return bytes([table[(s >> 3) + 4096] for s in pcm_samples(pcm)])


def alaw_decode(data: bytes) -> bytes:
    """A-law octets -> 16-bit signed LE PCM (ITU-T G.711)."""
    return b"".join(map(_ALAW_DEC.__getitem__, data))


def tone(frequency: float, duration: float, *, rate: int = 8000,
         amplitude: float = 0.5) -> bytes:
    """A sine tone as 16-bit signed LE PCM (``amplitude`` is a fraction of full scale)."""
    count = int(duration * rate)
    peak = max(0.0, min(1.0, amplitude)) * 32767
    step = 2 * math.pi * frequency / rate
    samples = array("h", (int(peak * math.sin(step * i)) for i in range(count)))
    if sys.byteorder == "big":
        samples.byteswap()
    return samples.tobytes()
