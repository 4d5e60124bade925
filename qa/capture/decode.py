"""Frame decoding: link layer -> IPv4/IPv6 (with fragment reassembly) -> UDP/TCP/SCTP.

Link types (tcpdump.org/linktypes.html): 0 NULL and 108 LOOP (4-byte address family, in
either byte order), 1 Ethernet (802.1Q / 802.1ad / QinQ tags, RFC 894 / IEEE 802.3),
12 / 14 / 101 raw IP (the version nibble decides), 113 Linux cooked v1 (SLL), 276 Linux
cooked v2 (SLL2), 228 raw IPv4, 229 raw IPv6. PPPoE sessions (RFC 2516) on Ethernet too.

IPv4 (RFC 791): the header checksum is not verified; a bad IHL or total length is a
problem; a total length of 0 is taken as "segmentation offload" (the captured length).
IPv6 (RFC 8200): hop-by-hop, routing, destination options, AH (RFC 4302) and fragment
headers are walked. Fragments of both are reassembled by :class:`Reassembler` (keyed
by source, destination, identification and, for IPv4, protocol; RFC 791 §3.2, RFC 8200
§4.5), bounded in pending datagrams and in capture time; overlapping fragments are a
problem and the datagram is dropped (RFC 5722).

Frames that carry no IP are skipped silently; a link type not listed above is reported
once.
"""

from __future__ import annotations

import socket
from struct import Struct

from qa.capture.model import Payload
from qa.capture.sctp import SctpReassembler
from qa.capture.sink import Sink
from qa.capture.tcp import TcpReassembler

_IP4 = Struct("!BxHHHxB")   # version/IHL, total length, identification, flags/offset, protocol
_UDP = Struct("!HHH")       # source port, destination port, length (RFC 768)
_U16 = Struct("!H")
_FRAG6 = Struct("!BxHI")    # next header, offset/flags, identification (RFC 8200 §4.5)

_VLAN = frozenset((0x8100, 0x88A8, 0x9100, 0x9200))
_ETHER_IP = {0x0800: 4, 0x86DD: 6}
_PPP_IP = {0x0021: 4, 0x0057: 6}
_AF_INET6 = frozenset((10, 24, 28, 30))  # Linux, BSDs, FreeBSD, Darwin
_EXT6 = frozenset((0, 43, 60))           # hop-by-hop, routing, destination options
MAX_EXT6 = 16
MAX_DATAGRAM = 65535
ADDR_CACHE = 4096


# -- link layers: each returns (offset of the IP header, IP version) or None --------------

def _ethernet(data: bytes) -> tuple[int, int] | None:
    if len(data) < 14:
        return None
    etype, off = (data[12] << 8) | data[13], 14
    while etype in _VLAN and len(data) >= off + 4:
        etype, off = (data[off + 2] << 8) | data[off + 3], off + 4
    if etype == 0x8864 and len(data) >= off + 8:  # PPPoE session (RFC 2516) + PPP (RFC 1661)
        ver = _PPP_IP.get((data[off + 6] << 8) | data[off + 7])
        return None if ver is None else (off + 8, ver)
    ver = _ETHER_IP.get(etype)
    return None if ver is None else (off, ver)


def _sll(data: bytes) -> tuple[int, int] | None:
    if len(data) < 16:
        return None
    ver = _ETHER_IP.get((data[14] << 8) | data[15])
    return None if ver is None else (16, ver)


def _sll2(data: bytes) -> tuple[int, int] | None:
    if len(data) < 20:
        return None
    ver = _ETHER_IP.get((data[0] << 8) | data[1])
    return None if ver is None else (20, ver)


def _raw(data: bytes) -> tuple[int, int] | None:
    return (0, data[0] >> 4) if data else None


def _null(data: bytes) -> tuple[int, int] | None:
    if len(data) < 4:
        return None
    family = int.from_bytes(data[:4], "little")
    if family > 0xFFFF:
        family = int.from_bytes(data[:4], "big")
    if family == 2:
        return 4, 4
    return (4, 6) if family in _AF_INET6 else None


def _ipv4_only(data: bytes) -> tuple[int, int] | None:
    return (0, 4) if data else None


def _ipv6_only(data: bytes) -> tuple[int, int] | None:
    return (0, 6) if data else None


LINK_LAYERS = {
    0: _null, 108: _null, 1: _ethernet, 12: _raw, 14: _raw, 101: _raw,
    113: _sll, 276: _sll2, 228: _ipv4_only, 229: _ipv6_only,
}


# -- fragments ------------------------------------------------------------------------------

class _Datagram:
    __slots__ = ("first", "frame", "pieces", "have", "total", "proto")

    def __init__(self, time: float, frame: int) -> None:
        self.first = time
        self.frame = frame
        self.pieces: list[tuple[int, bytes]] = []
        self.have = 0
        self.total = -1     # known once the last fragment (MF = 0) arrived
        self.proto = -1     # IPv6: the next header after the fragment header of offset 0


class Reassembler:
    """IP fragment reassembly with bounded state: ``max_pending`` datagrams, each
    dropped (and reported) ``timeout`` seconds of capture time after its first fragment."""

    def __init__(self, sink: Sink, *, max_pending: int = 1024, timeout: float = 30.0) -> None:
        self.sink = sink
        self.max_pending = max_pending
        self.timeout = timeout
        self.pending: dict[tuple[object, ...], _Datagram] = {}

    def add(self, key: tuple[object, ...], frame: int, time: float, start: int, data: bytes,
            more: bool, proto: int = -1) -> tuple[bytes, int] | None:
        """Add one fragment; return (datagram payload, protocol) once complete."""
        self.sink.stats.ip_fragments += 1
        self._expire(time)
        dg = self.pending.get(key)
        if dg is None:
            if len(self.pending) >= self.max_pending:
                self._drop(next(iter(self.pending)), frame, time, "ip.frag.overflow",
                           f"more than {self.max_pending} datagrams awaiting fragments")
            dg = self.pending[key] = _Datagram(time, frame)
        reason = self._reject(dg, start, data, more)
        if reason == "duplicate":
            return None
        if reason:
            self._drop(key, frame, time, reason[0], reason[1])
            return None
        if start == 0:
            dg.proto = proto
        dg.pieces.append((start, data))
        dg.have += len(data)
        if not more:
            dg.total = start + len(data)
        if dg.have != dg.total:
            return None
        del self.pending[key]
        dg.pieces.sort()
        self.sink.stats.ip_fragments_reassembled += 1
        return b"".join(d for _, d in dg.pieces), dg.proto

    @staticmethod
    def _reject(dg: _Datagram, start: int, data: bytes, more: bool) -> tuple[str, str] | str:
        """Why this fragment cannot join the datagram: '' if it can."""
        end = start + len(data)
        if end > MAX_DATAGRAM:
            return "ip.frag.oversize", f"fragments reach {end} bytes, over {MAX_DATAGRAM}"
        if (not more and dg.total >= 0 and end != dg.total) or (dg.total >= 0 and end > dg.total):
            return "ip.frag.inconsistent", "fragments disagree on the datagram's length"
        for s, d in dg.pieces:
            if start < s + len(d) and s < end:
                if s == start and d == data:
                    return "duplicate"
                return "ip.frag.overlap", f"overlapping fragments at offset {start} (RFC 5722)"
        return ""

    def _drop(self, key: tuple[object, ...], frame: int, time: float, rule: str,
              reason: str) -> None:
        dg = self.pending.pop(key, None)
        first = dg.frame if dg else frame
        self.sink.problem(frame, time, rule,
                          f"frame {frame}: {reason}; datagram begun in frame {first} dropped")

    def _expire(self, time: float) -> None:
        limit = time - self.timeout
        for key in [k for k, dg in self.pending.items() if dg.first < limit]:
            self._drop(key, frame=self.pending[key].frame, time=time, rule="ip.frag.timeout",
                       reason=f"fragments incomplete after {self.timeout:g} s")

    def finish(self, frame: int, time: float) -> None:
        """At the end of the capture: report every datagram still incomplete."""
        for key in list(self.pending):
            self._drop(key, frame, time, "ip.frag.incomplete",
                       "capture ended before all fragments arrived")


# -- the decoder ------------------------------------------------------------------------------

class Decoder:
    """Decodes frames into UDP ``Payload``s (returned) and, through the sink, TCP/SCTP
    messages and problems."""

    def __init__(self, sink: Sink, *, tcp: TcpReassembler | None = None) -> None:
        self.sink = sink
        self.frags = Reassembler(sink)
        self.tcp = tcp or TcpReassembler(sink)
        self.sctp = SctpReassembler(sink)
        self._addr4: dict[bytes, tuple[str, str]] = {}
        self._addr6: dict[bytes, tuple[str, str]] = {}
        self._unknown_links: set[int] = set()

    def frame(self, frame: int, time: float, linktype: int, data: bytes) -> Payload | None:
        """Decode one frame; the UDP payload it carries, if any."""
        link = LINK_LAYERS.get(linktype)
        if link is None:
            self._unknown_link(frame, time, linktype)
            return None
        where = link(data)
        if where is None:
            self.sink.stats.non_ip += 1
            return None
        off, ver = where
        if ver == 4:
            return self._ipv4(frame, time, data, off)
        if ver == 6:
            return self._ipv6(frame, time, data, off)
        self.sink.stats.non_ip += 1
        return None

    def _unknown_link(self, frame: int, time: float, linktype: int) -> None:
        if linktype not in self._unknown_links:
            self._unknown_links.add(linktype)
            self.sink.problem(frame, time, "pcap.linktype",
                              f"frame {frame}: link type {linktype} is not decoded; "
                              "its frames are skipped")

    def _ipv4(self, frame: int, time: float, data: bytes, off: int) -> Payload | None:
        end = len(data)
        if end - off < 20:
            self.sink.problem(frame, time, "ip.truncated", f"frame {frame}: IPv4 header cut short")
            return None
        vihl, total, ident, frag, proto = _IP4.unpack_from(data, off)
        hl = (vihl & 15) << 2
        if vihl >> 4 != 4 or hl < 20:
            self.sink.problem(frame, time, "ip.bad-header",
                              f"frame {frame}: IPv4 version/IHL byte {vihl:#04x} is invalid")
            return None
        if total == 0:
            total = end - off  # TSO: the length was left for the NIC to fill in
        if total < hl or off + total > end:
            self._bad_length(frame, time, 4, total, end - off, hl)
            return None
        key = data[off + 12:off + 20]
        addrs = self._addr4.get(key)
        if addrs is None:
            addrs = self._name4(key)
        end = off + total
        if frag & 0x3FFF:
            whole = self.frags.add((key, ident, proto), frame, time, (frag & 0x1FFF) << 3,
                                   data[off + hl:end], bool(frag & 0x2000))
            if whole is None:
                return None
            data, off, end, hl = whole[0], 0, len(whole[0]), 0
        return self._l4(frame, time, proto, addrs, 4, data, off + hl, end)

    def _bad_length(self, frame: int, time: float, ver: int, total: int, have: int,
                    hl: int) -> None:
        if total >= hl and total > have:
            self.sink.problem(frame, time, "ip.truncated",
                              f"frame {frame}: IPv{ver} packet of {total} bytes captured as "
                              f"{have} (snap length?)")
        else:
            self.sink.problem(frame, time, "ip.bad-length",
                              f"frame {frame}: IPv{ver} total length {total} is impossible")

    def _name4(self, key: bytes) -> tuple[str, str]:
        if len(self._addr4) >= ADDR_CACHE:
            self._addr4.clear()
        addrs = self._addr4[key] = (socket.inet_ntoa(key[:4]), socket.inet_ntoa(key[4:]))
        return addrs

    def _name6(self, key: bytes) -> tuple[str, str]:
        if len(self._addr6) >= ADDR_CACHE:
            self._addr6.clear()
        addrs = self._addr6[key] = (socket.inet_ntop(socket.AF_INET6, key[:16]),
                                    socket.inet_ntop(socket.AF_INET6, key[16:]))
        return addrs

    def _ipv6(self, frame: int, time: float, data: bytes, off: int) -> Payload | None:
        end = len(data)
        if end - off < 40 or data[off] >> 4 != 6:
            self.sink.problem(frame, time, "ip.bad-header",
                              f"frame {frame}: IPv6 header cut short or wrong version")
            return None
        plen = _U16.unpack_from(data, off + 4)[0]
        total = plen + 40 if plen else end - off  # 0: a jumbogram (RFC 2675)
        if off + total > end:
            self._bad_length(frame, time, 6, total, end - off, 40)
            return None
        key = data[off + 8:off + 40]
        addrs = self._addr6.get(key) or self._name6(key)
        return self._ext6(frame, time, data[off + 6], key, addrs, data, off + 40, off + total)

    def _ext6(self, frame: int, time: float, nh: int, key: bytes, addrs: tuple[str, str],
              buf: bytes, p: int, end: int) -> Payload | None:
        """Walk IPv6 extension headers (RFC 8200 §4) to the upper-layer header."""
        for _ in range(MAX_EXT6):
            if nh in _EXT6 or nh == 51:
                if end - p < 2:
                    break
                size = (buf[p + 1] + 2) * 4 if nh == 51 else (buf[p + 1] + 1) * 8
                nh, p = buf[p], p + size
            elif nh == 44:
                if end - p < 8:
                    break
                nxt, offflags, ident = _FRAG6.unpack_from(buf, p)
                p += 8
                if not offflags & 0xFFF9:  # atomic fragment (RFC 6946)
                    nh = nxt
                    continue
                whole = self.frags.add((key, ident), frame, time, offflags & 0xFFF8,
                                       buf[p:end], bool(offflags & 1), nxt)
                if whole is None:
                    return None
                buf, p, end = whole[0], 0, len(whole[0])
                nh = whole[1]
            else:
                if p > end:
                    break
                return self._l4(frame, time, nh, addrs, 6, buf, p, end)
        self.sink.problem(frame, time, "ip.bad-header",
                          f"frame {frame}: IPv6 extension headers do not fit the packet")
        return None

    def _l4(self, frame: int, time: float, proto: int, addrs: tuple[str, str], ver: int,
            buf: bytes, off: int, end: int) -> Payload | None:
        if proto == 17:
            if end - off < 8:
                self.sink.problem(frame, time, "udp.truncated", f"frame {frame}: UDP header cut short")
                return None
            sport, dport, ulen = _UDP.unpack_from(buf, off)
            if ulen < 8 or off + ulen > end:
                if ulen or ver == 4:
                    self.sink.problem(frame, time, "udp.bad-length",
                                      f"frame {frame}: UDP length {ulen} does not fit "
                                      f"the {end - off} bytes after the IP header")
                    return None
                ulen = end - off  # IPv6 jumbogram
            self.sink.stats.udp_datagrams += 1
            return Payload(frame, time, addrs[0], sport, addrs[1], dport, "udp",
                           buf[off + 8:off + ulen], ver)
        if proto == 6:
            self.tcp.segment(frame, time, addrs[0], addrs[1], ver, buf, off, end)
        elif proto == 132:
            self.sctp.packet(frame, time, addrs[0], addrs[1], ver, buf, off, end)
        return None

    def finish(self, frame: int, time: float) -> None:
        """At the end of the capture: report state left incomplete."""
        self.frags.finish(frame, time)
