"""Fuzz the capture reader: only PcapError may escape at open; iteration never raises.

Problems are the only way damage may show, and the reader's last-resort net
("capture.internal-error") must never be needed: it would mean a decoder bug.
"""

from __future__ import annotations

import atexit
import shutil
import struct
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from qa.capture import CaptureProblem, CaptureReader, Payload, PcapError
from qa.capture.writer import ethernet, fragment_ipv4, tcp_packet, udp_packet, write_pcap, write_pcapng
from tests.corpus import CORPUS

CORPUS = CORPUS / "pcaps"
TMP = Path(tempfile.mkdtemp(prefix="voipqa-capture-fuzz-"))
atexit.register(shutil.rmtree, TMP, True)
LINKTYPES = [0, 1, 12, 14, 101, 108, 113, 228, 229, 276, 147]

FAST = settings(max_examples=300, deadline=None, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
SLOW = settings(max_examples=100_000, deadline=None, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

SIP = (b"INVITE sip:b@h SIP/2.0\r\nVia: SIP/2.0/TCP h;branch=z9hG4bK1\r\nCall-ID: c\r\n"
       b"CSeq: 1 INVITE\r\nContent-Length: 4\r\n\r\nv=0\n")
SEED_FRAMES = [
    udp_packet("10.0.0.1", 5060, "10.0.0.2", 5060, SIP),
    udp_packet("2001:db8::1", 5060, "2001:db8::2", 5060, SIP),
    tcp_packet("10.0.0.1", 4000, "10.0.0.2", 5060, seq=7, flags="S"),
    tcp_packet("10.0.0.1", 4000, "10.0.0.2", 5060, SIP[:40], seq=8),
    tcp_packet("10.0.0.1", 4000, "10.0.0.2", 5060, SIP[40:] + SIP, seq=48),
    *fragment_ipv4(udp_packet("10.0.0.1", 5060, "10.0.0.2", 5060, SIP * 3, ident=3), 64),
]


def consume(path: Path) -> None:
    """Open and read ``path`` the way the engine does; assert the contract."""
    try:
        reader = CaptureReader(path)
    except PcapError as exc:
        assert "\n" not in str(exc)
        return
    for item in reader:
        assert isinstance(item, (Payload, CaptureProblem))
        if isinstance(item, CaptureProblem):
            assert item.rule != "capture.internal-error", item.reason
    assert reader.stats.packets >= 0


def write(data: bytes) -> Path:
    path = TMP / "fuzz.cap"
    path.write_bytes(data)
    return path


def pcap_header(order: str = "<", linktype: int = 1) -> bytes:
    return struct.pack(order + "IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, linktype)


@st.composite
def mutated(draw: st.DrawFn, seed: bytes, keep: int = 0) -> bytes:
    """``seed`` with a few byte edits past its first ``keep`` bytes: flip, insert, delete, cut."""
    data = bytearray(seed)
    for _ in range(draw(st.integers(1, 8))):
        if len(data) <= keep:
            break
        at = draw(st.integers(keep, len(data) - 1))
        op = draw(st.sampled_from(["flip", "insert", "delete", "cut", "byte"]))
        if op == "flip":
            data[at] ^= 1 << draw(st.integers(0, 7))
        elif op == "byte":
            data[at] = draw(st.sampled_from([0, 0xFF, 0x80, 0x7F, 0x0D, 0x0A]))
        elif op == "insert":
            data[at:at] = draw(st.binary(max_size=16))
        elif op == "delete":
            del data[at:at + draw(st.integers(1, 16))]
        else:
            del data[at:]
    return bytes(data)


# -- random bytes after a valid header ------------------------------------------------------------

@st.composite
def pcap_with_random_records(draw: st.DrawFn) -> bytes:
    order = draw(st.sampled_from(["<", ">"]))
    out = [pcap_header(order, draw(st.sampled_from(LINKTYPES)))]
    for _ in range(draw(st.integers(0, 6))):
        body = draw(st.binary(max_size=200))
        caplen = draw(st.one_of(st.just(len(body)), st.integers(0, (1 << 32) - 1)))
        out.append(struct.pack(order + "IIII", 1, 2, caplen, len(body)) + body)
    out.append(draw(st.binary(max_size=20)))
    return b"".join(out)


@FAST
@given(data=pcap_with_random_records())
def test_random_pcap_records(data: bytes) -> None:
    consume(write(data))


@FAST
@given(data=st.binary(max_size=400))
def test_random_bytes_after_pcap_header(data: bytes) -> None:
    consume(write(pcap_header() + data))


# -- random pcapng blocks ----------------------------------------------------------------------------

@st.composite
def pcapng_blocks(draw: st.DrawFn) -> bytes:
    order = draw(st.sampled_from(["<", ">"]))
    blocks = [struct.pack(order + "III", 0x0A0D0D0A, 28, 0x1A2B3C4D) + struct.pack(order + "HHqI", 1, 0, -1, 28)]
    for _ in range(draw(st.integers(0, 8))):
        btype = draw(st.sampled_from([1, 2, 3, 6, 5, 0x0A0D0D0A, 0xBAD]))
        if btype == 1 and draw(st.booleans()):
            body = struct.pack(order + "HHI", draw(st.sampled_from(LINKTYPES)), 0, 0)
            body += draw(st.sampled_from([b"", struct.pack(order + "HHB3x", 9, 1, 9),
                                          struct.pack(order + "HHB3x", 9, 1, 0x85), struct.pack(order + "HHq", 14, 8, 5)]))
        elif btype == 6 and draw(st.booleans()):
            frame = draw(st.sampled_from(SEED_FRAMES))
            body = struct.pack(order + "IIIII", draw(st.integers(0, 2)), 0, 5, len(frame), len(frame)) + frame
        else:
            body = draw(st.binary(max_size=120))
        body += b"\0" * (-len(body) % 4)
        size = len(body) + 12
        if draw(st.integers(0, 9)) == 0:
            size = draw(st.integers(0, (1 << 32) - 1))
        blocks.append(struct.pack(order + "II", btype, size) + body + struct.pack(order + "I", size))
    return b"".join(blocks)


@FAST
@given(data=pcapng_blocks())
def test_random_pcapng_blocks(data: bytes) -> None:
    consume(write(data))


# -- mutated valid frames (reaches IP, fragments, TCP, SCTP, WS) ----------------------------------

@st.composite
def mutated_frames(draw: st.DrawFn) -> bytes:
    path = TMP / "frames.pcap"
    frames = [draw(mutated(draw(st.sampled_from(SEED_FRAMES)))) for _ in range(draw(st.integers(1, 8)))]
    if draw(st.booleans()):
        write_pcap(path, [(i * 0.5, ethernet(f)) for i, f in enumerate(frames)], 1)
    else:
        write_pcapng(path, [(0, i * 0.5, f) for i, f in enumerate(frames)], [101])
    return path.read_bytes()


@FAST
@given(data=mutated_frames())
def test_mutated_frames(data: bytes) -> None:
    consume(write(data))


# -- mutated corpus files ---------------------------------------------------------------------------

SMALL_CORPUS = sorted(p for p in CORPUS.glob("*") if p.suffix in (".pcap", ".pcapng", ".cap")
                      and p.stat().st_size < 60_000) if CORPUS.exists() else []


@pytest.mark.corpus("pcaps")
@FAST
@given(data=st.data())
def test_mutated_corpus_files(data: st.DataObject) -> None:
    seed = data.draw(st.sampled_from(SMALL_CORPUS)).read_bytes()
    consume(write(data.draw(mutated(seed))))


@pytest.mark.corpus("pcaps")
@FAST
@given(data=st.data())
def test_mutated_corpus_files_keeping_the_header(data: st.DataObject) -> None:
    seed = data.draw(st.sampled_from(SMALL_CORPUS)).read_bytes()
    consume(write(data.draw(mutated(seed, keep=24))))


# -- the 100,000-example variants (pytest -m slow) ------------------------------------------------

@pytest.mark.slow
@SLOW
@given(data=st.one_of(pcap_with_random_records(), pcapng_blocks(), mutated_frames()))
def test_slow_random_captures(data: bytes) -> None:
    consume(write(data))


@pytest.mark.slow
@pytest.mark.corpus("pcaps")
@SLOW
@given(data=st.data())
def test_slow_mutated_corpus(data: st.DataObject) -> None:
    seed = data.draw(st.sampled_from(SMALL_CORPUS)).read_bytes()
    consume(write(data.draw(mutated(seed, keep=data.draw(st.sampled_from([0, 24]))))))
