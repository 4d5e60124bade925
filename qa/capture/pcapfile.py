"""Streaming pcap and pcapng reader: frames out, one pass, bounded memory.

Formats:
- pcap: draft-ietf-opsawg-pcap (the libpcap format). Magic 0xA1B2C3D4 (microsecond
  timestamps) or 0xA1B23C4D (nanosecond), in either byte order; 16-byte record header
  (ts_sec, ts_frac, caplen, origlen). The Kuznetzov "modified" magic 0xA1B2CD34 (24-byte
  record header) is read too.
- pcapng: draft-ietf-opsawg-pcapng. Section Header Block (SHB, 0x0A0D0D0A) with its
  byte-order magic 0x1A2B3C4D (each section may have its own byte order), Interface
  Description Blocks (IDB, type 1: link type, ``if_tsresol`` option 9, ``if_tsoffset``
  option 14), Enhanced Packet Blocks (EPB, 6), Simple Packet Blocks (SPB, 3, interface 0,
  no timestamp), obsolete Packet Blocks (OPB, 2). Other blocks are skipped.
- gzip-compressed files of either format (as Wireshark reads them).

``FrameSource(path)`` checks the file header at once and raises :class:`PcapError` for
anything that is not a capture. Iterating it yields ``(frame_number, time, linktype,
data)`` tuples (frame numbers 1-based, counting packet records as tshark does) and,
in-line, :class:`CaptureProblem` records for damage found on the way (a truncated last
record, a corrupt block length, an unknown interface); iteration then ends cleanly and
never raises.
"""

from __future__ import annotations

import gzip
from collections.abc import Iterator
from pathlib import Path
from struct import Struct
from typing import BinaryIO

from qa.capture.model import CaptureProblem, PcapError

CHUNK = 1 << 20
#: The largest record we believe (Wireshark's limit for most link types is 256 KiB).
MAX_RECORD = 1 << 18
#: The largest pcapng block of any type we buffer.
MAX_BLOCK = 1 << 24

PCAP_MAGICS = {  # first four bytes on disk -> (byte order, ticks per second, record header size)
    b"\xd4\xc3\xb2\xa1": ("<", 1_000_000, 16),
    b"\xa1\xb2\xc3\xd4": (">", 1_000_000, 16),
    b"\x4d\x3c\xb2\xa1": ("<", 1_000_000_000, 16),
    b"\xa1\xb2\x3c\x4d": (">", 1_000_000_000, 16),
    b"\x34\xcd\xb2\xa1": ("<", 1_000_000, 24),
    b"\xa1\xb2\xcd\x34": (">", 1_000_000, 24),
}
PCAPNG_SHB = b"\x0a\x0d\x0d\x0a"
PCAPNG_ORDER = {b"\x4d\x3c\x2b\x1a": "<", b"\x1a\x2b\x3c\x4d": ">"}
GZIP_MAGIC = b"\x1f\x8b"
#: Capture formats we recognise only to say what they are.
OTHER_FORMATS = {b"GMBU": "Microsoft NetMon 2.x", b"RTSS": "Microsoft NetMon 1.x",
                 b"snoop\0\0\0": "Sun snoop", b"XCP\0": "NetXRay/Sniffer"}

BT_SHB, BT_IDB, BT_OPB, BT_SPB, BT_EPB = 0x0A0D0D0A, 1, 2, 3, 6
MIN_PACKET_BLOCK = {BT_EPB: 32, BT_OPB: 32, BT_SPB: 16}

Frame = tuple[int, float, int, bytes]


def _open(path: Path) -> BinaryIO:
    """Open ``path`` for reading (transparently gunzipped); PcapError if impossible."""
    try:
        if path.is_dir():
            raise PcapError(path, "is a directory, not a pcap or pcapng file")
        raw = open(path, "rb")  # noqa: SIM115 - closed by the caller
    except FileNotFoundError:
        raise PcapError(path, "no such file") from None
    except PermissionError:
        raise PcapError(path, "permission denied") from None
    except OSError as exc:
        raise PcapError(path, f"cannot read: {exc.strerror or exc}") from None
    try:
        if raw.read(2) == GZIP_MAGIC:
            raw.seek(0)
            return gzip.open(raw, "rb")  # type: ignore[return-value]
        raw.seek(0)
    except OSError as exc:
        raw.close()
        raise PcapError(path, f"cannot read: {exc.strerror or exc}") from None
    return raw


def _refill(f: BinaryIO, buf: bytes, pos: int, need: int) -> bytes:
    """Return the unread tail of ``buf`` extended until it holds ``need`` bytes or EOF."""
    parts = [buf[pos:]]
    have = len(parts[0])
    while have < need:
        more = f.read(max(CHUNK, need - have))
        if not more:
            break
        parts.append(more)
        have += len(more)
    return b"".join(parts)


class FrameSource:
    """A capture file, checked at construction, read frame by frame when iterated."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        with _open(self.path) as f:
            try:
                head = f.read(24)
            except (OSError, EOFError, gzip.BadGzipFile) as exc:
                raise PcapError(self.path, f"cannot read: {exc}") from None
        self.format = self._classify(head)

    def _classify(self, head: bytes) -> str:
        if not head:
            raise PcapError(self.path, "empty file, not a pcap or pcapng file")
        magic = head[:4]
        if magic in PCAP_MAGICS:
            if len(head) < 24:
                raise PcapError(self.path, f"truncated pcap file header ({len(head)} of 24 bytes)")
            return "pcap"
        if magic == PCAPNG_SHB:
            if len(head) < 12 or head[8:12] not in PCAPNG_ORDER:
                raise PcapError(self.path, "pcapng section header without a valid byte-order magic")
            return "pcapng"
        hint = next((f"; looks like {name}, convert it with editcap -F pcap"
                     for sig, name in OTHER_FORMATS.items() if head.startswith(sig)), "")
        raise PcapError(self.path, f"not a pcap or pcapng file (magic 0x{magic.hex()}){hint}")

    def __iter__(self) -> Iterator[Frame | CaptureProblem]:
        try:
            f = _open(self.path)
        except PcapError as exc:
            yield CaptureProblem(0, 0.0, "pcap.unreadable", exc.reason, "error")
            return
        with f:
            reader = _read_pcap if self.format == "pcap" else _read_pcapng
            try:
                yield from reader(f)
            except (OSError, EOFError, gzip.BadGzipFile) as exc:
                yield CaptureProblem(0, 0.0, "pcap.read-error", f"read failed: {exc}", "error")


def _truncated(n: int, ts: float, what: str) -> CaptureProblem:
    return CaptureProblem(n, ts, "pcap.truncated",
                          f"frame {n}: file ends inside the {what}; reading stopped", "warning")


def _read_pcap(f: BinaryIO) -> Iterator[Frame | CaptureProblem]:
    """Frames of a pcap file (draft-ietf-opsawg-pcap §4-5)."""
    header = f.read(24)
    order, ticks, rec_size = PCAP_MAGICS[header[:4]]
    snaplen, linktype = Struct(order + "16xII").unpack(header)
    linktype &= 0xFFFF  # upper bits carry FCS information
    limit = max(MAX_RECORD, snaplen if snaplen < (1 << 26) else 0)
    unpack = Struct(order + "IIII").unpack_from
    buf = f.read(CHUNK)
    pos, end, n, ts = 0, len(buf), 0, 0.0
    while True:
        if end - pos < rec_size:
            buf = _refill(f, buf, pos, rec_size)
            pos, end = 0, len(buf)
            if end < rec_size:
                if end:
                    yield _truncated(n + 1, ts, "record header")
                return
        sec, frac, caplen, _ = unpack(buf, pos)
        if caplen > limit:
            yield CaptureProblem(n + 1, ts, "pcap.bad-record",
                                 f"frame {n + 1}: record length {caplen} is not believable; "
                                 "reading stopped", "error")
            return
        start = pos + rec_size
        stop = start + caplen
        if stop > end:
            buf = _refill(f, buf, pos, rec_size + caplen)
            pos, end = 0, len(buf)
            if end < rec_size + caplen:
                yield _truncated(n + 1, ts, "packet data")
                return
            continue
        n += 1
        ts = sec + frac / ticks
        yield n, ts, linktype, buf[start:stop]
        pos = stop


class _Section:
    """Byte order and interfaces of one pcapng section."""

    __slots__ = ("order", "head", "epb", "opb", "u32", "ifaces")

    def __init__(self, order: str) -> None:
        self.order = order
        self.head = Struct(order + "II").unpack_from
        self.epb = Struct(order + "IIIII").unpack_from
        self.opb = Struct(order + "HHIIII").unpack_from
        self.u32 = Struct(order + "I").unpack_from
        self.ifaces: list[tuple[int, int, int]] = []  # (linktype, ticks per second, offset s)


def _idb(sec: _Section, block: bytes) -> tuple[int, int, int]:
    """Parse an Interface Description Block body (pcapng §4.2) into (linktype, ticks, offset)."""
    order = sec.order
    linktype, _, _ = Struct(order + "HHI").unpack_from(block, 8)
    ticks, offset = 1_000_000, 0
    opt_head = Struct(order + "HH").unpack_from
    p, end = 16, len(block) - 4
    while p + 4 <= end:
        code, length = opt_head(block, p)
        value = block[p + 4:p + 4 + length]
        if code == 0:
            break
        if code == 9 and length >= 1:  # if_tsresol
            v = value[0]
            ticks = 1 << (v & 0x7F) if v & 0x80 else 10 ** min(v, 30)
        elif code == 14 and length >= 8:  # if_tsoffset
            offset = Struct(order + "q").unpack_from(value)[0]
        p += 4 + ((length + 3) & ~3)
    return linktype & 0xFFFF, ticks or 1, offset


def _read_pcapng(f: BinaryIO) -> Iterator[Frame | CaptureProblem]:
    """Frames of a pcapng file (draft-ietf-opsawg-pcapng §3-4), section by section."""
    sec = _Section("<")
    buf = f.read(CHUNK)
    pos, end, n, ts = 0, len(buf), 0, 0.0
    while True:
        if end - pos < 12:
            buf = _refill(f, buf, pos, 12)
            pos, end = 0, len(buf)
            if end < 12:
                if end:
                    yield _truncated(n + 1, ts, "block header")
                return
        if buf[pos:pos + 4] == PCAPNG_SHB:
            order = PCAPNG_ORDER.get(buf[pos + 8:pos + 12])
            if order is None:
                yield CaptureProblem(n + 1, ts, "pcapng.bad-section",
                                     "section header with a bad byte-order magic; reading stopped",
                                     "error")
                return
            sec = _Section(order)
        btype, blen = sec.head(buf, pos)
        if blen < 12 or blen & 3 or blen > MAX_BLOCK or (
                blen > MAX_RECORD + 4096 and btype in (BT_EPB, BT_SPB, BT_OPB)):
            yield CaptureProblem(n + 1, ts, "pcapng.bad-block",
                                 f"block of type {btype:#x} with impossible length {blen}; "
                                 "reading stopped", "error")
            return
        if end - pos < blen:
            buf = _refill(f, buf, pos, blen)
            pos, end = 0, len(buf)
            if end < blen:
                yield _truncated(n + 1, ts, f"block of type {btype:#x}")
                return
        if blen < MIN_PACKET_BLOCK.get(btype, 12):
            n += 1
            pos += blen
            yield CaptureProblem(n, ts, "pcapng.bad-block",
                                 f"frame {n}: packet block of {blen} bytes is too short; skipped")
            continue
        if btype == BT_EPB:
            n += 1
            iface, hi, lo, caplen, _ = sec.epb(buf, pos + 8)
            data_at, room = pos + 28, blen - 32
        elif btype == BT_SPB:
            n += 1
            iface, hi, lo = 0, -1, 0
            caplen = sec.u32(buf, pos + 8)[0]
            data_at, room = pos + 12, blen - 16
        elif btype == BT_OPB:
            n += 1
            iface, _, hi, lo, caplen, _ = sec.opb(buf, pos + 8)
            data_at, room = pos + 28, blen - 32
        else:
            if btype == BT_IDB:
                sec.ifaces.append(_idb(sec, buf[pos:pos + blen]) if blen >= 20 else (-1, 1, 0))
            pos += blen
            continue
        pos += blen
        if iface >= len(sec.ifaces):
            yield CaptureProblem(n, ts, "pcapng.no-interface",
                                 f"frame {n}: packet for undeclared interface {iface}; skipped")
            continue
        linktype, ticks, offset = sec.ifaces[iface]
        if hi >= 0:
            ts = ((hi << 32) | lo) / ticks + offset
        if btype == BT_SPB:
            caplen = min(caplen, room)
        elif caplen > room:
            yield CaptureProblem(n, ts, "pcapng.bad-block",
                                 f"frame {n}: captured length {caplen} exceeds its block; skipped")
            continue
        yield n, ts, linktype, buf[data_at:data_at + caplen]
