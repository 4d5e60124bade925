"""In-band DTMF (ITU-T Q.23 / Q.24): a Goertzel detector and a tone generator, sans-I/O.

Audio is 16-bit signed little-endian PCM (what :mod:`qa.rtp.g711` decodes to).

Detection (:class:`InbandDtmfDetector`), per block of 20 ms (160 samples at 8 kHz):

- the power at the eight Q.23 frequencies (697, 770, 852, 941 / 1209, 1336, 1477,
  1633 Hz), computed as the single-bin DFT the Goertzel recurrence computes (written as
  dot products with precomputed cos/sin tables: the same numbers, ~10x faster in Python);
  with 50 Hz bins, off-nominal tones lose power: ±1 % is accepted, Q.24's ±1.5 % + 2 Hz
  only for the low-frequency pairs (a known limit of this block length);
- a block counts as digit *d* when (Q.24 §3 style checks):
  each of the two tones is at least ``min_level_dbm0`` (default -32 dBm0 per frequency, so
  that -30 dBm0 tones pass whatever their phase against the block grid);
  the strongest row and column each exceed every other row/column by 6 dB;
  twist within limits (high group at most 8 dB below, 4 dB above the low group);
  the two tones carry at least ``energy_ratio`` (70 %) of the block's energy
  (rejects speech, music and noise: their energy is spread over many frequencies);
- timing (Q.24 §4): a digit is reported when two consecutive blocks show it (the tone
  lasts >= ~30-40 ms; Q.24 must-accept is 40 ms); one block without it ends the press, so
  a 40 ms pause always separates two presses of the same digit, and a held tone is one
  digit however long it lasts.

Generation (:func:`dtmf_tone_pcm`): the two Q.23 frequencies per digit at ``level_dbm0``
each, ``on_ms`` of tone and ``off_ms`` of silence per digit. 0 dBm0 is taken as
3.17 dB below a full-scale sine (G.711 μ-law's maximum, ITU-T G.711 table 5/6).
"""

from __future__ import annotations

import math
import operator
import sys
from array import array
from dataclasses import dataclass, field

from qa.rtp.g711 import pcm_samples

__all__ = ["DTMF_ROWS", "DTMF_COLS", "KEYPAD", "InbandDigit", "InbandDtmfDetector", "dtmf_tone_pcm",
           "dbm0_amplitude"]

#: ITU-T Q.23: low (row) and high (column) group frequencies in Hz.
DTMF_ROWS: tuple[float, ...] = (697.0, 770.0, 852.0, 941.0)
DTMF_COLS: tuple[float, ...] = (1209.0, 1336.0, 1477.0, 1633.0)
#: KEYPAD[row][col] -> digit (Q.23 figure 1).
KEYPAD: tuple[str, ...] = ("123A", "456B", "789C", "*0#D")
_POSITION = {d: (r, c) for r, keys in enumerate(KEYPAD) for c, d in enumerate(keys)}

#: the level of a full-scale sine in dBm0 (G.711 μ-law: +3.17 dBm0)
FULL_SCALE_DBM0 = 3.17
_FULL_SCALE = 32767.0


def dbm0_amplitude(level_dbm0: float) -> float:
    """Peak amplitude (16-bit scale) of a sine at ``level_dbm0``."""
    return _FULL_SCALE * 10 ** ((level_dbm0 - FULL_SCALE_DBM0) / 20)


@dataclass(frozen=True)
class InbandDigit:
    """A detected press: the digit and the sample index (since the detector began) of its onset."""

    digit: str
    start: int


@dataclass
class InbandDtmfDetector:
    """Goertzel DTMF detector over PCM fed in arrival order; see the module docstring.

    ``feed(pcm) -> list[str]`` returns the digits whose press was recognised in this
    chunk (chunks of any length; state carries over). ``feed_detailed`` gives their onsets.
    """

    sample_rate: int = 8000
    min_level_dbm0: float = -32.0
    energy_ratio: float = 0.7
    relative_peak_db: float = 6.0
    normal_twist_db: float = 8.0
    reverse_twist_db: float = 4.0
    accept_blocks: int = 2
    block: int = 0
    samples_seen: int = 0
    digits: str = ""
    _buf: array = field(default_factory=lambda: array("h"), repr=False)
    _tables: list[tuple[list[float], list[float]]] = field(default_factory=list, repr=False)
    _held: str | None = field(default=None, repr=False)
    _candidate: str | None = field(default=None, repr=False)
    _count: int = field(default=0, repr=False)
    _cand_start: int = field(default=0, repr=False)

    def __post_init__(self) -> None:
        if self.sample_rate < 4000:
            raise ValueError("DTMF needs a sample rate of at least 4000 Hz")
        self.block = self.block or self.sample_rate // 50          # 20 ms
        n = self.block
        for f in DTMF_ROWS + DTMF_COLS:
            w = 2 * math.pi * f / self.sample_rate
            self._tables.append(([math.cos(w * i) for i in range(n)], [math.sin(w * i) for i in range(n)]))
        min_amp = dbm0_amplitude(self.min_level_dbm0)
        self._min_power = (min_amp * n / 2) ** 2              # |X(f)|^2 of a sine at the minimum level
        self._gate = n * min_amp ** 2                         # block energy of two tones at that level
        self._peak = 10 ** (self.relative_peak_db / 10)
        self._normal = 10 ** (self.normal_twist_db / 10)
        self._reverse = 10 ** (self.reverse_twist_db / 10)

    # ------------------------------------------------------------------ feeding
    def feed(self, pcm: bytes | array) -> list[str]:
        """Feed 16-bit LE PCM; return the digits recognised in it, in order."""
        return [d.digit for d in self.feed_detailed(pcm)]

    def feed_detailed(self, pcm: bytes | array) -> list[InbandDigit]:
        """Like :meth:`feed`, with each press's onset (sample index)."""
        self._buf.extend(pcm_samples(pcm))
        out: list[InbandDigit] = []
        n = self.block
        pos = 0
        while len(self._buf) - pos >= n:
            found = self._step(self._buf[pos:pos + n])
            pos += n
            if found is not None:
                out.append(found)
        if pos:
            del self._buf[:pos]
        return out

    def _step(self, samples: array) -> InbandDigit | None:
        start = self.samples_seen
        self.samples_seen += len(samples)
        digit = self.classify(samples)
        if digit is None or digit != self._held:
            self._held = None                                  # one block without it ends a press
        if digit is None or self._held is not None:
            self._candidate, self._count = None, 0
            return None
        if digit != self._candidate:
            self._candidate, self._count, self._cand_start = digit, 0, start
        self._count += 1
        if self._count < self.accept_blocks:
            return None
        self._held, self._candidate, self._count = digit, None, 0
        self.digits += digit
        return InbandDigit(digit, self._cand_start)

    # ------------------------------------------------------------------ one block
    def classify(self, samples: array) -> str | None:
        """The digit one block of ``self.block`` samples shows, or None (Q.24 checks)."""
        energy = float(sum(map(operator.mul, samples, samples)))
        if energy < self._gate:
            return None
        powers = [sum(map(operator.mul, samples, c)) ** 2 + sum(map(operator.mul, samples, s)) ** 2
                  for c, s in self._tables]
        rows, cols = powers[:4], powers[4:]
        r = max(range(4), key=rows.__getitem__)
        c = max(range(4), key=cols.__getitem__)
        row, col = rows[r], cols[c]
        if row < self._min_power or col < self._min_power:
            return None
        if col * self._normal < row or row * self._reverse < col:       # twist
            return None
        if any(i != r and p * self._peak > row for i, p in enumerate(rows)):
            return None
        if any(i != c and p * self._peak > col for i, p in enumerate(cols)):
            return None
        if 2 * (row + col) / len(samples) < self.energy_ratio * energy:
            return None
        return KEYPAD[r][c]


def dtmf_tone_pcm(digits: str, on_ms: float = 100, off_ms: float = 100, level_dbm0: float = -10,
                  *, sample_rate: int = 8000, twist_db: float = 0.0) -> bytes:
    """DTMF tones for ``digits`` (0-9 * # A-D) as 16-bit LE PCM (ITU-T Q.23).

    Each digit: ``on_ms`` of its two frequencies, the low one at ``level_dbm0`` and the
    high one at ``level_dbm0 + twist_db``, then ``off_ms`` of silence.
    """
    on = int(round(on_ms * sample_rate / 1000))
    off = int(round(off_ms * sample_rate / 1000))
    low_amp = dbm0_amplitude(level_dbm0)
    high_amp = dbm0_amplitude(level_dbm0 + twist_db)
    out = array("h")
    for digit in digits:
        pos = _POSITION.get(digit.upper())
        if pos is None:
            raise ValueError(f"{digit!r} is not a DTMF digit (0-9 * # A-D)")
        wl = 2 * math.pi * DTMF_ROWS[pos[0]] / sample_rate
        wh = 2 * math.pi * DTMF_COLS[pos[1]] / sample_rate
        out.extend(max(-32768, min(32767, int(round(low_amp * math.sin(wl * i) + high_amp * math.sin(wh * i)))))
                   for i in range(on))
        out.extend([0] * off)
    if sys.byteorder == "big":
        out.byteswap()
    return out.tobytes()
