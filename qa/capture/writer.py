"""A tiny pcap/pcapng writer and packet builders, for tests and fixtures.

Typical use (an RTP stream to a pcap SIPp can play needs Ethernet framing)::

    from qa.capture.writer import LINKTYPE_ETHERNET, ethernet, udp_packet, write_pcap
    pkts = [(t0 + i * 0.02, ethernet(udp_packet("10.0.0.1", 6000, "10.0.0.2", 6002, rtp)))
            for i, rtp in enumerate(rtp_payloads)]
    write_pcap("dtmf.pcap", pkts, linktype=LINKTYPE_ETHERNET)

``udp_packet`` / ``tcp_packet`` return a complete IP packet (IPv4, or IPv6 when the
addresses contain ':'), which is what link type 101 (raw IP, the default) stores.
Formats: draft-ietf-opsawg-pcap, draft-ietf-opsawg-pcapng; IPv4 RFC 791, IPv6 RFC 8200,
UDP RFC 768, TCP RFC 9293 (checksums computed, RFC 1071).
"""

from __future__ import annotations

import socket
import struct
from collections.abc import Iterable
from pathlib import Path

LINKTYPE_NULL = 0
LINKTYPE_ETHERNET = 1
LINKTYPE_RAW = 101
LINKTYPE_LINUX_SLL = 113
LINKTYPE_LINUX_SLL2 = 276

TCP_FLAGS = {"F": 0x01, "S": 0x02, "R": 0x04, "P": 0x08, "A": 0x10}


def write_pcap(path: str | Path, packets: Iterable[tuple[float, bytes]], linktype: int = LINKTYPE_RAW,
               *, byteorder: str = "<", nanosecond: bool = False, snaplen: int = 262144) -> int:
    """Write ``(time, frame bytes)`` packets as a pcap file; return how many were written."""
    ticks = 1_000_000_000 if nanosecond else 1_000_000
    magic = 0xA1B23C4D if nanosecond else 0xA1B2C3D4
    rec = struct.Struct(byteorder + "IIII")
    count = 0
    with open(path, "wb") as f:
        f.write(struct.pack(byteorder + "IHHiIII", magic, 2, 4, 0, 0, snaplen, linktype))
        for time, data in packets:
            sec = int(time)
            f.write(rec.pack(sec, round((time - sec) * ticks), len(data), len(data)))
            f.write(data)
            count += 1
    return count


def _block(order: str, btype: int, body: bytes) -> bytes:
    body += b"\0" * (-len(body) % 4)
    size = len(body) + 12
    return struct.pack(order + "II", btype, size) + body + struct.pack(order + "I", size)


def write_pcapng(path: str | Path, packets: Iterable[tuple[int, float, bytes]],
                 linktypes: Iterable[int] = (LINKTYPE_RAW,), *, byteorder: str = "<",
                 tsresol: int = 6) -> int:
    """Write ``(interface, time, frame)`` packets as pcapng: one SHB, one IDB per link
    type (interface ids in that order, ``if_tsresol`` = 10^-tsresol), then EPBs."""
    o = byteorder
    ticks = 10 ** tsresol
    count = 0
    with open(path, "wb") as f:
        f.write(_block(o, 0x0A0D0D0A, struct.pack(o + "IHHq", 0x1A2B3C4D, 1, 0, -1)))
        for lt in linktypes:
            opts = struct.pack(o + "HHB3x", 9, 1, tsresol) + struct.pack(o + "HH", 0, 0)
            f.write(_block(o, 1, struct.pack(o + "HHI", lt, 0, 0) + opts))
        for iface, time, data in packets:
            t = round(time * ticks)
            f.write(_block(o, 6, struct.pack(o + "IIIII", iface, t >> 32, t & 0xFFFFFFFF,
                                             len(data), len(data)) + data))
            count += 1
    return count


def checksum(data: bytes) -> int:
    """The Internet checksum (RFC 1071) of ``data``."""
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def _addr(addr: str) -> tuple[int, bytes]:
    family = socket.AF_INET6 if ":" in addr else socket.AF_INET
    return family, socket.inet_pton(family, addr)


def ipv4_packet(src: str, dst: str, proto: int, payload: bytes, *, ident: int = 0,
                flags_offset: int = 0, ttl: int = 64, total_length: int | None = None) -> bytes:
    """An IPv4 packet (RFC 791) with a correct header checksum."""
    total = 20 + len(payload) if total_length is None else total_length
    head = struct.pack("!BBHHHBBH4s4s", 0x45, 0, total, ident, flags_offset, ttl, proto, 0,
                       _addr(src)[1], _addr(dst)[1])
    return head[:10] + struct.pack("!H", checksum(head)) + head[12:] + payload


def ipv6_packet(src: str, dst: str, next_header: int, payload: bytes, *, hop_limit: int = 64) -> bytes:
    """An IPv6 packet (RFC 8200); ``payload`` includes any extension headers."""
    return struct.pack("!IHBB16s16s", 6 << 28, len(payload), next_header, hop_limit,
                       _addr(src)[1], _addr(dst)[1]) + payload


def _l4_checksum(src: str, dst: str, proto: int, segment: bytes) -> int:
    family, s = _addr(src)
    d = _addr(dst)[1]
    if family == socket.AF_INET6:
        pseudo = s + d + struct.pack("!IxxxB", len(segment), proto)
    else:
        pseudo = s + d + struct.pack("!xBH", proto, len(segment))
    return checksum(pseudo + segment) or 0xFFFF


def _ip(src: str, dst: str, proto: int, segment: bytes, ident: int) -> bytes:
    if ":" in src:
        return ipv6_packet(src, dst, proto, segment)
    return ipv4_packet(src, dst, proto, segment, ident=ident)


def udp_packet(src: str, sport: int, dst: str, dport: int, payload: bytes, *, ident: int = 0) -> bytes:
    """An IP/UDP packet (RFC 768) carrying ``payload``, ready for a raw-IP (101) pcap.

    IPv6 when ``src`` contains ':'. Wrap it with :func:`ethernet` for an Ethernet pcap.
    """
    seg = struct.pack("!HHHH", sport, dport, 8 + len(payload), 0) + payload
    seg = seg[:6] + struct.pack("!H", _l4_checksum(src, dst, 17, seg)) + seg[8:]
    return _ip(src, dst, 17, seg, ident)


def tcp_packet(src: str, sport: int, dst: str, dport: int, payload: bytes = b"", *, seq: int = 0,
               ack: int = 0, flags: str = "PA", window: int = 65535, ident: int = 0) -> bytes:
    """An IP/TCP segment (RFC 9293) with the given flags (letters of ``FSRPA``)."""
    bits = sum(TCP_FLAGS[c] for c in flags)
    seg = struct.pack("!HHIIBBHHH", sport, dport, seq & 0xFFFFFFFF, ack & 0xFFFFFFFF, 5 << 4,
                      bits, window, 0, 0) + payload
    seg = seg[:16] + struct.pack("!H", _l4_checksum(src, dst, 6, seg)) + seg[18:]
    return _ip(src, dst, 6, seg, ident)


def ethernet(packet: bytes, *, vlans: Iterable[int] = (), src_mac: bytes = b"\x02\0\0\0\0\x01",
             dst_mac: bytes = b"\x02\0\0\0\0\x02") -> bytes:
    """Frame an IP packet in Ethernet II, with optional 802.1Q tags (outermost first)."""
    etype = 0x86DD if packet[:1] and packet[0] >> 4 == 6 else 0x0800
    tags = b"".join(struct.pack("!HH", 0x8100, vid & 0xFFF) for vid in vlans)
    return dst_mac + src_mac + tags + struct.pack("!H", etype) + packet


def fragment_ipv4(packet: bytes, size: int) -> list[bytes]:
    """Split an IPv4 packet (20-byte header) into fragments of ``size`` payload bytes
    (rounded down to a multiple of 8)."""
    head, body = packet[:20], packet[20:]
    size = max(8, size - size % 8)
    src, dst = socket.inet_ntoa(head[12:16]), socket.inet_ntoa(head[16:20])
    ident = struct.unpack("!H", head[4:6])[0]
    out = []
    for start in range(0, len(body), size):
        more = 0x2000 if start + size < len(body) else 0
        out.append(ipv4_packet(src, dst, head[9], body[start:start + size], ident=ident,
                               flags_offset=more | (start >> 3)))
    return out


def fragment_ipv6(packet: bytes, size: int, ident: int = 1) -> list[bytes]:
    """Split an IPv6 packet (no extension headers) into fragments (RFC 8200 §4.5)."""
    head, body = packet[:40], packet[40:]
    src = socket.inet_ntop(socket.AF_INET6, head[8:24])
    dst = socket.inet_ntop(socket.AF_INET6, head[24:40])
    size = max(8, size - size % 8)
    out = []
    for start in range(0, len(body), size):
        more = 1 if start + size < len(body) else 0
        frag = struct.pack("!BBHI", head[6], 0, start | more, ident)
        out.append(ipv6_packet(src, dst, 44, frag + body[start:start + size]))
    return out
