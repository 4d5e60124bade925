"""TCP stream reassembly (RFC 9293) for SIP over TCP and WebSocket, bounded in memory.

Each direction (source address/port -> destination address/port) is a stream of its
own. Bytes are delivered in sequence-number order: retransmitted and overlapping
segments are trimmed, out-of-order segments wait in a per-stream buffer of at most
``max_buffer`` bytes; when that overflows (a segment the capture never saw) the gap is
reported and the stream skips ahead. SYN starts a stream, FIN ends it once every byte
before it arrived, RST ends both directions. A stream carrying neither SIP nor
SIP-over-WebSocket keeps only a few fields; idle streams expire after
``idle_timeout`` seconds of capture time, and at most ``max_streams`` are kept, so memory
does not grow with the file.
"""

from __future__ import annotations

from struct import Struct

from qa.capture.model import Payload
from qa.capture.sink import Sink
from qa.capture.sipstream import SipStream, WsStream

_TCP = Struct("!HHIIBB")  # sport, dport, seq, ack, data offset, flags (RFC 9293 §3.1)
FIN, SYN, RST = 0x01, 0x02, 0x04
_WS_START = (b"GET ", b"HTTP/1.1 101", b"HTTP/1.0 101")


class _Stream:
    """Reassembly state of one direction."""

    __slots__ = ("next", "isn", "last", "fin", "ooo", "ooo_bytes", "app", "pending",
                 "transport")

    def __init__(self, seq: int, time: float, isn: int | None) -> None:
        self.next = seq & 0xFFFFFFFF   # the sequence number of the next byte to deliver
        self.isn = isn                 # set when the SYN was seen
        self.last = time
        self.fin: int | None = None
        self.ooo: dict[int, bytes] = {}
        self.ooo_bytes = 0
        # seen from its SYN: the first bytes decide; picked up mid-stream: hunt for SIP
        self.pending = isn is not None
        self.app: SipStream | WsStream | None = None if self.pending else SipStream()
        self.transport = "tcp"


def _rel(seq: int, ref: int) -> int:
    """Signed distance from ``ref`` to ``seq`` in 32-bit sequence space (RFC 9293 §3.4)."""
    d = (seq - ref) & 0xFFFFFFFF
    return d - 0x100000000 if d & 0x80000000 else d


class TcpReassembler:
    """Turns TCP segments into framed SIP messages (``Payload``s) in a :class:`Sink`."""

    def __init__(self, sink: Sink, *, max_streams: int = 20000, idle_timeout: float = 300.0,
                 max_buffer: int = 1 << 18) -> None:
        self.sink = sink
        self.max_streams = max_streams
        self.idle_timeout = idle_timeout
        self.max_buffer = max_buffer
        self.streams: dict[tuple[str, int, str, int], _Stream] = {}
        self._next_sweep = 0.0

    def segment(self, frame: int, time: float, src: str, dst: str, ver: int,
                buf: bytes, off: int, end: int) -> None:
        """Take one TCP segment: ``buf[off:end]`` is the TCP header and payload."""
        sink = self.sink
        if end - off < 20:
            sink.problem(frame, time, "tcp.truncated", f"frame {frame}: TCP header cut short")
            return
        sport, dport, seq, _, doff, flags = _TCP.unpack_from(buf, off)
        hl = (doff >> 4) * 4
        if hl < 20 or off + hl > end:
            sink.problem(frame, time, "tcp.bad-header",
                         f"frame {frame}: TCP data offset {hl} does not fit the segment")
            return
        sink.stats.tcp_segments += 1
        if time >= self._next_sweep:
            self._sweep(time)
        key = (src, sport, dst, dport)
        st = self.streams.get(key)
        if flags & RST:
            self._close(key)
            self._close((dst, dport, src, sport))
            return
        if flags & SYN:
            if st is None or st.isn != seq:
                st = self._open(key, seq + 1, time, seq)
            seq += 1
        start = off + hl
        if st is None:
            if start == end:
                return  # pure ACK or FIN of a stream we do not follow: keep no state
            st = self._open(key, seq, time, None)
        st.last = time
        if start < end and (st.app is not None or st.pending):
            self._data(st, seq & 0xFFFFFFFF, buf[start:end], frame, time, key, ver)
        if flags & FIN:
            st.fin = (seq + end - start) & 0xFFFFFFFF
        if st.fin is not None and (st.fin == st.next or (st.app is None and not st.pending)):
            self._close(key)

    # -- stream table -----------------------------------------------------------------

    def _open(self, key: tuple[str, int, str, int], seq: int, time: float,
              isn: int | None) -> _Stream:
        if len(self.streams) >= self.max_streams:
            self._close(next(iter(self.streams)))
        st = _Stream(seq, time, isn)
        self.streams.pop(key, None)
        self.streams[key] = st
        self.sink.stats.tcp_streams += 1
        return st

    def _close(self, key: tuple[str, int, str, int]) -> None:
        self.streams.pop(key, None)

    def _sweep(self, time: float) -> None:
        """Forget streams idle for ``idle_timeout`` seconds of capture time."""
        limit = time - self.idle_timeout
        for key in [k for k, st in self.streams.items() if st.last < limit]:
            del self.streams[key]
        self._next_sweep = time + 10.0

    # -- bytes ------------------------------------------------------------------------

    def _data(self, st: _Stream, seq: int, data: bytes, frame: int, time: float,
              key: tuple[str, int, str, int], ver: int) -> None:
        rel = _rel(seq, st.next)
        if rel < 0:
            self.sink.stats.tcp_retransmissions += 1
            if -rel >= len(data):
                return
            data, rel = data[-rel:], 0
            seq = st.next
        if rel > 0:
            self._hold(st, seq, data, frame, time)
        else:
            self._deliver(st, data, frame, time, key, ver)
        if st.ooo:
            self._drain(st, frame, time, key, ver)

    def _hold(self, st: _Stream, seq: int, data: bytes, frame: int, time: float) -> None:
        """Buffer an out-of-order segment; past ``max_buffer`` declare the gap lost."""
        old = st.ooo.get(seq)
        if old is not None and len(old) >= len(data):
            self.sink.stats.tcp_retransmissions += 1
            return
        st.ooo[seq] = data
        st.ooo_bytes += len(data) - (len(old) if old else 0)
        if st.ooo_bytes > self.max_buffer:
            first = min(st.ooo, key=lambda s: _rel(s, st.next))
            self.sink.problem(frame, time, "tcp.gap",
                              f"frame {frame}: {_rel(first, st.next)} bytes of a TCP stream "
                              "never captured; skipped ahead")
            st.next = first
            if isinstance(st.app, SipStream):
                st.app.lost()
            else:  # WebSocket frames cannot be found again after a gap
                st.app, st.pending = None, False

    def _drain(self, st: _Stream, frame: int, time: float,
               key: tuple[str, int, str, int], ver: int) -> None:
        """Deliver buffered segments that have become in order."""
        while st.ooo:
            seq = min(st.ooo, key=lambda s: _rel(s, st.next))
            rel = _rel(seq, st.next)
            if rel > 0:
                return
            data = st.ooo.pop(seq)
            st.ooo_bytes -= len(data)
            if -rel < len(data):
                self._deliver(st, data[-rel:] if rel else data, frame, time, key, ver)

    def _deliver(self, st: _Stream, data: bytes, frame: int, time: float,
                 key: tuple[str, int, str, int], ver: int) -> None:
        st.next = (st.next + len(data)) & 0xFFFFFFFF
        app = st.app
        if st.pending:
            st.pending = False
            app = st.app = _classify(data)
            if isinstance(app, WsStream):
                st.transport = "ws"
        if app is None:  # not SIP: forget what was buffered
            st.ooo.clear()
            st.ooo_bytes = 0
            return
        msgs = app.feed(data, frame, time, self.sink)
        if app.dead:
            st.app = None
            st.ooo.clear()
            st.ooo_bytes = 0
        if msgs:
            self._emit(msgs, st.transport, frame, time, key, ver)

    def _emit(self, msgs: list[bytes], transport: str, frame: int, time: float,
              key: tuple[str, int, str, int], ver: int) -> None:
        src, sport, dst, dport = key
        out, stats = self.sink.out, self.sink.stats
        for msg in msgs:
            out.append(Payload(frame, time, src, sport, dst, dport, transport, msg, ver))
        if transport == "ws":
            stats.ws_messages += len(msgs)
        else:
            stats.tcp_messages += len(msgs)


def _classify(first: bytes) -> SipStream | WsStream | None:
    """What the first bytes of a stream seen from its SYN carry: SIP, WebSocket, neither.

    SIP starts with a request or status line; uppercase ASCII is enough to try (the
    start line is verified while hunting, with a bounded budget). Anything else (TLS,
    binary protocols) is not followed.
    """
    head = first.lstrip(b"\r\n")[:12]
    if head.startswith(_WS_START):
        return WsStream()
    if head[:1].isupper() or not head:
        return SipStream()
    return None
