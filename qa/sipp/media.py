"""Media for SIPp's ``play_pcap_audio``: RFC 4733 digits, in-band DTMF and codec audio.

SIPp 3.6.1 reads a pcap with link type Ethernet (1) or Linux cooked (113) only --
``Unsupported link-type`` otherwise, so raw IP (101) will not do (``prepare_pcap.c``;
``/usr/share/sip-tester/dtmf_2833_1.pcap`` is Ethernet too). It keeps each IPv4/UDP
packet's UDP header and payload, rewrites the addresses and ports (source ``-mp``,
destination the port of the peer's SDP; the destination port of a packet minus the
lowest one in the file is kept as an offset) and paces the packets by the record
timestamps. So every packet here goes from one fixed address/port to another, and
the record times are the RTP schedule: one packet per 20 ms.

    path = rfc4733_pcap("0123456789*#", tmp / "dtmf.pcap")
    Agent("uac_dtmf", keys=play_keys(path), ...)   # media_pcap, media_ms

``play_keys`` gives the two keys ``sipp/uac_dtmf.xml`` needs: the file and how long
it plays. ``negotiated_play_keys`` gives ``sipp/uac_media.xml`` (the default call) one
pcap per codec it can play, cached per run by codec and duration. The ``*_packets`` functions are the same streams as ``(seconds, RtpPacket)``
lists, without a file, for tests and for the analysis side.
"""

from __future__ import annotations

import math
import os
import tempfile
from pathlib import Path

from qa.capture.writer import LINKTYPE_ETHERNET, ethernet, udp_packet, write_pcap
from qa.errors import BadInput
from qa.rtp import EVENT_DIGITS, DtmfEvent, RtpPacket, alaw_encode, tone, ulaw_encode

__all__ = [
    "AUDIO_CODECS", "FRAME_MS", "LINKTYPE_ETHERNET", "STATIC_PAYLOAD_TYPES", "audio_packets",
    "audio_pcap", "cached_audio_pcap", "inband_packets", "inband_pcap", "negotiated_play_keys",
    "pcap_duration_ms", "pcap_key", "play_keys", "rfc4733_packets", "rfc4733_pcap", "rtp_summary", "write_rtp_pcap",
]

#: RTP packetisation time of every stream here.
FRAME_MS = 20
#: RTP clock of G.711, G.722 (RFC 3551 §4.5.2: 8000 although G.722 samples at 16 kHz)
#: and telephone-event.
CLOCK_HZ = 8000
SAMPLES_PER_FRAME = CLOCK_HZ * FRAME_MS // 1000
#: The static payload types (RFC 3551) of the codecs :func:`audio_pcap` can produce.
STATIC_PAYLOAD_TYPES = {"PCMU": 0, "PCMA": 8, "G722": 9}
AUDIO_CODECS = tuple(STATIC_PAYLOAD_TYPES)
#: The digits RFC 4733 events (and DTMF tones) exist for.
DIGITS = EVENT_DIGITS
#: At most this many digits per string (the INFO scenario's injection file has 16 fields).
MAX_DIGITS = 16

# Addresses written into the file; SIPp replaces them all.
_SRC, _DST = ("192.0.2.1", 40000), ("192.0.2.2", 40002)
_SSRC = 0x766F6970                       # "voip"
_BASE_SEQ, _BASE_TS = 1000, 160_000
#: End packets of an event: the final one and its two retransmissions (RFC 4733 §2.5.1.4).
END_PACKETS = 3
#: G.722 has no encoder in voipqa: its frames carry this constant octet (a payload-type
#: test, not meaningful audio; a decoder renders it as low-level noise).
G722_FILLER = 0x55

Timed = list[tuple[float, RtpPacket]]


# -- checks ------------------------------------------------------------------------
def check_digits(digits: str) -> str:
    """The digits upper-cased; BadInput unless 1..16 of ``0-9 * # A-D``."""
    text = str(digits).upper()
    if not 1 <= len(text) <= MAX_DIGITS or any(d not in DIGITS for d in text):
        raise BadInput(f"digits: {digits!r} must be 1..{MAX_DIGITS} of 0-9 * # A-D")
    return text


def _frames_of(ms: int, what: str, minimum: int) -> int:
    """A duration in ms as a whole number of 20 ms frames (rounded up), at least ``minimum``."""
    if ms <= 0:
        raise BadInput(f"{what}: must be > 0 ms, got {ms}")
    return max(minimum, math.ceil(ms / FRAME_MS))


def _codec(codec: str, allowed: tuple[str, ...]) -> str:
    name = str(codec).upper()
    if name == "OPUS":
        raise BadInput("codec: opus has no static payload type and voipqa has no opus encoder; "
                       "opus RTP is not generated (negotiation is still testable with uac_call)")
    if name not in allowed:
        raise BadInput(f"codec: {codec!r} is not one of {', '.join(allowed)}")
    return name


# -- RFC 4733 ----------------------------------------------------------------------
def _event_packets(event: int, start_frame: int, frames: int, seq: int, *, payload_type: int,
                   ssrc: int, volume: int) -> Timed:
    """One event: ``frames`` updates 20 ms apart, the last one with E set and sent 3 times.

    All carry the event's start timestamp (RFC 4733 §2.5.1.2); the first has the
    marker bit (§2.5.1.3); the duration covers the event up to the end of each packet's
    20 ms; the final duration is repeated on the retransmissions (§2.5.1.4).
    """
    timestamp = _BASE_TS + start_frame * SAMPLES_PER_FRAME
    out: Timed = []
    for k in range(frames + END_PACKETS - 1):
        final = k >= frames - 1
        duration = min(k + 1, frames) * SAMPLES_PER_FRAME
        payload = DtmfEvent(event, end=final, volume=volume, duration=duration)
        packet = RtpPacket(marker=k == 0, payload_type=payload_type, sequence_number=seq + k,
                           timestamp=timestamp, ssrc=ssrc, payload=bytes(payload))
        out.append(((start_frame + k) * FRAME_MS / 1000.0, packet))
    return out


def rfc4733_packets(digits: str, *, payload_type: int = 101, event_ms: int = 100,
                    gap_ms: int = 100, volume: int = 10, ssrc: int = _SSRC) -> Timed:
    """The telephone-event stream for ``digits`` as ``(seconds, RtpPacket)``.

    Each digit lasts ``event_ms`` (rounded up to 20 ms, at least 40 ms); the next one
    starts ``gap_ms`` after it ends (at least 40 ms: the two retransmitted end packets
    go in the gap). Sequence numbers are continuous over the whole stream.
    """
    text = check_digits(digits)
    if not 96 <= payload_type <= 127:
        raise BadInput(f"payload_type: telephone-event needs a dynamic type 96..127, got {payload_type}")
    frames = _frames_of(event_ms, "event_ms", 2)
    gap = _frames_of(gap_ms, "gap_ms", END_PACKETS - 1)
    out: Timed = []
    start = 0
    for digit in text:
        seq = _BASE_SEQ + len(out)
        out += _event_packets(DIGITS.index(digit), start, frames, seq, payload_type=payload_type,
                              ssrc=ssrc, volume=volume)
        start += frames + gap
    return out


def rfc4733_pcap(digits: str, path: Path | str, *, payload_type: int = 101, event_ms: int = 100,
                 gap_ms: int = 100) -> Path:
    """Write the RFC 4733 events for ``digits`` as a pcap SIPp can play; returns the path."""
    return write_rtp_pcap(path, rfc4733_packets(digits, payload_type=payload_type,
                                                event_ms=event_ms, gap_ms=gap_ms))


# -- G.711 / G.722 audio ------------------------------------------------------------
def _encode(codec: str, pcm: bytes) -> bytes:
    """16-bit LE PCM at 8 kHz -> one octet per sample (G.711), or filler for G.722."""
    if codec == "PCMU":
        return ulaw_encode(pcm)
    if codec == "PCMA":
        return alaw_encode(pcm)
    return bytes([G722_FILLER]) * (len(pcm) // 2)


def _frames(codec: str, payload: bytes, *, ssrc: int = _SSRC) -> Timed:
    """Cut encoded audio into 20 ms RTP packets (last one padded with encoded silence)."""
    silence = _encode(codec, bytes(2 * SAMPLES_PER_FRAME))
    pt = STATIC_PAYLOAD_TYPES[codec]
    out: Timed = []
    for k, pos in enumerate(range(0, len(payload), SAMPLES_PER_FRAME)):
        chunk = payload[pos:pos + SAMPLES_PER_FRAME]
        chunk += silence[:SAMPLES_PER_FRAME - len(chunk)]
        out.append((k * FRAME_MS / 1000.0, RtpPacket(
            marker=k == 0, payload_type=pt, sequence_number=(_BASE_SEQ + k) & 0xFFFF,
            timestamp=_BASE_TS + k * SAMPLES_PER_FRAME, ssrc=ssrc, payload=chunk)))
    return out


def inband_packets(digits: str, *, codec: str = "PCMU", on_ms: int = 100, off_ms: int = 100,
                   level_dbm0: float = -10, lead_ms: int = 100, tail_ms: int = 200) -> Timed:
    """``digits`` as G.711 DTMF tones (``qa.rtp.dtmf_tones``) in 20 ms frames, PT 0 or 8.

    ``lead_ms``/``tail_ms`` of silence go before and after the tones, so a detector
    sees each digit start from silence and the last one end.
    """
    from qa.rtp.dtmf_tones import dtmf_tone_pcm

    text = check_digits(digits)
    name = _codec(codec, ("PCMU", "PCMA"))
    pcm = (bytes(2 * CLOCK_HZ * lead_ms // 1000)
           + dtmf_tone_pcm(text, on_ms=on_ms, off_ms=off_ms, level_dbm0=level_dbm0)
           + bytes(2 * CLOCK_HZ * tail_ms // 1000))
    return _frames(name, _encode(name, pcm))


def inband_pcap(digits: str, path: Path | str, *, codec: str = "PCMU") -> Path:
    """Write ``digits`` as in-band G.711 DTMF tones (PT 0 PCMU / 8 PCMA); returns the path."""
    return write_rtp_pcap(path, inband_packets(digits, codec=codec))


def audio_packets(codec: str, seconds: float, *, frequency: float = 440.0,
                  amplitude: float = 0.1) -> Timed:
    """``seconds`` of a quiet tone in ``codec``'s static payload type (PCMU 0, PCMA 8, G722 9).

    G.722 frames are :data:`G722_FILLER` octets (voipqa has no G.722 encoder): enough to
    show which payload type goes on the wire. opus raises BadInput (no static type, no
    encoder here).
    """
    name = _codec(codec, AUDIO_CODECS)
    if not 0 < seconds <= 600:
        raise BadInput(f"seconds: must be in (0, 600], got {seconds}")
    frames = _frames_of(round(seconds * 1000), "seconds", 1)
    pcm = tone(frequency, frames * FRAME_MS / 1000.0, amplitude=amplitude)
    return _frames(name, _encode(name, pcm))


def audio_pcap(codec: str, seconds: float, path: Path | str) -> Path:
    """Write ``seconds`` of audio in ``codec`` (PCMU, PCMA, G722) as a pcap; returns the path."""
    return write_rtp_pcap(path, audio_packets(codec, seconds))


def cached_audio_pcap(codec: str, seconds: float, directory: Path | str) -> Path:
    """:func:`audio_pcap` kept in ``directory`` by codec and duration, written once.

    Every answered call of a run plays one of these (``sipp/uac_media.xml``), so a run
    writes each (codec, duration) once instead of once per call. Cases run in parallel
    processes: the file is written under a temporary name and renamed, so a reader never
    sees half a file and two writers simply both produce the same bytes.
    """
    name = _codec(codec, AUDIO_CODECS)
    ms = _frames_of(round(seconds * 1000), "seconds", 1) * FRAME_MS
    path = Path(directory) / f"{name.lower()}-{ms}ms.pcap"
    if path.is_file():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}-", suffix=".pcap", dir=path.parent)
    os.close(fd)
    try:
        audio_pcap(name, ms / 1000.0, tmp)
        os.replace(tmp, path)
    finally:
        Path(tmp).unlink(missing_ok=True)
    return path


def negotiated_play_keys(seconds: float, directory: Path | str) -> dict[str, str]:
    """The ``pcap_pcmu`` / ``pcap_pcma`` / ``pcap_g722`` keys of ``sipp/uac_media.xml``:
    ``seconds`` of audio in each codec it can play, cached in ``directory``.

    SIPp substitutes ``play_pcap_audio="[key]"`` and reads the file when it loads the
    scenario, so every codec's pcap must exist even though the call plays one (the one of
    the answer's payload type). Paths are absolute (SIPp runs in its work directory).
    """
    return {pcap_key(codec): str(cached_audio_pcap(codec, seconds, directory).resolve())
            for codec in AUDIO_CODECS}


def pcap_key(codec: str) -> str:
    """The -key of ``sipp/uac_media.xml`` naming the pcap played when the answer chose ``codec``."""
    return f"pcap_{codec.lower()}"


# -- files ---------------------------------------------------------------------------
def write_rtp_pcap(path: Path | str, packets: Timed, *, start: float = 1_700_000_000.0) -> Path:
    """Write RTP packets as Ethernet/IPv4/UDP records at ``start`` + their offsets."""
    if not packets:
        raise BadInput("no RTP packets to write")
    records = [(start + offset, ethernet(udp_packet(*_SRC, *_DST, bytes(packet))))
               for offset, packet in packets]
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_pcap(path, records, linktype=LINKTYPE_ETHERNET)
    return path


def pcap_duration_ms(path: Path | str) -> int:
    """How long SIPp takes to play ``path``: first to last record, plus one 20 ms frame."""
    from qa.capture.pcapfile import FrameSource

    times = [item[1] for item in FrameSource(path) if isinstance(item, tuple)]
    if not times:
        raise BadInput(f"{path}: no packets to play")
    return round((max(times) - min(times)) * 1000.0) + FRAME_MS


def rtp_summary(path: Path | str) -> tuple[int | None, int]:
    """The payload type of the first RTP packet in a pcap of ours (or SIPp's) and how many
    packets it holds: what the customer's record says it sent (``None``: no UDP packet).

    Ethernet frames only (what :func:`write_rtp_pcap` and sip-tester's pcaps hold).
    """
    from qa.capture.pcapfile import FrameSource

    first: int | None = None
    count = 0
    for item in FrameSource(path):
        if not isinstance(item, tuple):
            continue
        frame = item[-1]
        ip = frame[14:]
        if len(ip) < 20 or ip[0] >> 4 != 4 or ip[9] != 17:
            continue
        rtp = ip[(ip[0] & 0x0F) * 4 + 8:]
        if len(rtp) >= 12:
            count += 1
            first = rtp[1] & 0x7F if first is None else first
    return first, count


def play_keys(path: Path | str, *, margin_ms: int = 200) -> dict[str, str]:
    """The ``media_pcap`` / ``media_ms`` keys of ``sipp/uac_dtmf.xml`` for one pcap.

    ``media_ms`` is the play time plus ``margin_ms``, so the BYE follows the last packet.
    The path is made absolute (SIPp runs in its work directory).
    """
    return {"media_pcap": str(Path(path).resolve()),
            "media_ms": str(pcap_duration_ms(path) + margin_ms)}
