"""Estimated listening quality: the ITU-T G.107 E-model, simplified for a passive capture.

R = R0 - Is - Id - Ie,eff + A with the G.107 §7 default values for everything a capture
cannot see (R0 - Is = 93.2 for the default room noise, loudness and sidetone; A = 0):

* Id from the one-way delay Ta in ms (G.107 simplified, as in Cole & Rosenbluth 2001):
  Id = 0.024·Ta + 0.11·(Ta − 177.3)·H(Ta − 177.3).
* Ie,eff = Ie + (95 − Ie) · Ppl / (Ppl / BurstR + Bpl) (G.107 eq. 7-29), Ppl in percent,
  BurstR = 1 (random loss), Ie and Bpl per codec from ITU-T G.113 Appendix I.
* MOS_CQE from R (G.107 Annex B, eq. B-4).

A capture cannot measure mouth-to-ear delay: :func:`estimated_delay_ms` uses the
packetisation time plus a jitter buffer of twice the observed jitter (at least one
packet), which is what a de-jitter buffer adds on top of a LAN's transit time.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["CodecImpairment", "IMPAIRMENTS", "impairment", "r_factor", "mos_from_r", "mos",
           "estimated_delay_ms"]

#: G.107 §7.2 default: R0 - Is with all default parameters.
R_DEFAULT = 93.2


@dataclass(frozen=True, slots=True)
class CodecImpairment:
    """Equipment impairment factor Ie and packet-loss robustness Bpl (ITU-T G.113 App. I)."""

    ie: float
    bpl: float


#: Encoding name (upper case, as in a=rtpmap) -> G.113 Appendix I values.
#: G.711 with packet loss concealment (G.711 Appendix I PLC): Ie 0, Bpl 25.1;
#: G.729A + VAD: Ie 11, Bpl 19.0; G.723.1 6.3 kbit/s: Ie 15, Bpl 16.1;
#: G.722 is scored on the narrowband scale as G.711 (an approximation).
IMPAIRMENTS: dict[str, CodecImpairment] = {
    "PCMU": CodecImpairment(0.0, 25.1),
    "PCMA": CodecImpairment(0.0, 25.1),
    "G722": CodecImpairment(0.0, 25.1),
    "G729": CodecImpairment(11.0, 19.0),
    "G723": CodecImpairment(15.0, 16.1),
}

#: G.711 without PLC (G.113 Appendix I): used for unknown codecs, the conservative choice.
_UNKNOWN = CodecImpairment(0.0, 4.3)


def impairment(codec: str | None) -> CodecImpairment:
    """Ie/Bpl for an encoding name; G.711-without-PLC values when unknown."""
    return IMPAIRMENTS.get((codec or "").upper(), _UNKNOWN)


def _delay_impairment(delay_ms: float) -> float:
    excess = delay_ms - 177.3
    return 0.024 * delay_ms + (0.11 * excess if excess > 0 else 0.0)


def r_factor(loss_percent: float, delay_ms: float = 0.0, codec: str | None = "PCMU",
             burst_ratio: float = 1.0) -> float:
    """Transmission rating R (G.107 eq. 7-1 with defaults, eq. 7-29 for Ie,eff)."""
    imp = impairment(codec)
    ppl = min(max(loss_percent, 0.0), 100.0)
    ie_eff = imp.ie + (95.0 - imp.ie) * ppl / (ppl / burst_ratio + imp.bpl)
    return R_DEFAULT - _delay_impairment(max(delay_ms, 0.0)) - ie_eff


def mos_from_r(r: float) -> float:
    """MOS_CQE from R (G.107 Annex B eq. B-4): 1 below R=0, 4.5 above R=100."""
    if r <= 0:
        return 1.0
    if r >= 100:
        return 4.5
    return 1.0 + 0.035 * r + r * (r - 60.0) * (100.0 - r) * 7e-6


def estimated_delay_ms(jitter_ms: float, ptime_ms: float = 20.0) -> float:
    """One-way delay estimate: packetisation + a jitter buffer of max(2·jitter, ptime)."""
    return ptime_ms + max(2.0 * jitter_ms, ptime_ms)


def mos(loss_percent: float, jitter_ms: float = 0.0, codec: str | None = "PCMU",
        ptime_ms: float = 20.0) -> float:
    """Estimated MOS of a stream, rounded to 2 decimals."""
    r = r_factor(loss_percent, estimated_delay_ms(jitter_ms, ptime_ms), codec)
    return round(mos_from_r(r), 2)
