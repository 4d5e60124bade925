"""SIP over SCTP (RFC 4168): DATA chunks (RFC 9260 §3.3.1) reassembled into messages.

Each SCTP user message carries exactly one SIP message (RFC 4168 §5), so no framing
is needed; fragmented messages (B/E flags) are joined by TSN, retransmitted chunks
(a TSN already seen) are dropped. Messages that do not start with a SIP start line
(Diameter, M3UA, ... on the same association) are skipped silently.
"""

from __future__ import annotations

from collections import deque
from struct import Struct

from qa.capture.model import Payload
from qa.capture.sink import Sink
from qa.capture.sipstream import looks_like_sip

_COMMON = Struct("!HH")        # source port, destination port (then tag, checksum)
_CHUNK = Struct("!BBH")        # type, flags, length
_DATA = Struct("!IHHI")        # TSN, stream id, stream sequence number, PPID
FLAG_E, FLAG_B = 0x01, 0x02
MAX_MESSAGE = 1 << 18
MAX_TRACKED = 4096


class _Partial:
    __slots__ = ("next_tsn", "parts", "size")

    def __init__(self, tsn: int, data: bytes) -> None:
        self.next_tsn = (tsn + 1) & 0xFFFFFFFF
        self.parts = [data]
        self.size = len(data)


class SctpReassembler:
    """Turns SCTP packets into SIP ``Payload``s (transport ``sctp``) in a :class:`Sink`."""

    def __init__(self, sink: Sink) -> None:
        self.sink = sink
        self._partial: dict[tuple[str, int, str, int, int], _Partial] = {}
        self._seen: dict[tuple[str, int, str, int], tuple[deque[int], set[int]]] = {}

    def packet(self, frame: int, time: float, src: str, dst: str, ver: int,
               buf: bytes, off: int, end: int) -> None:
        """Take one SCTP packet: ``buf[off:end]`` is the common header and the chunks."""
        if end - off < 12:
            self.sink.problem(frame, time, "sctp.truncated", f"frame {frame}: SCTP header cut short")
            return
        sport, dport = _COMMON.unpack_from(buf, off)
        p = off + 12
        while p + 4 <= end:
            ctype, flags, length = _CHUNK.unpack_from(buf, p)
            if length < 4 or p + length > end:
                self.sink.problem(frame, time, "sctp.bad-chunk",
                                  f"frame {frame}: SCTP chunk length {length} does not fit")
                return
            if ctype == 0 and length >= 16:
                tsn, sid, _, _ = _DATA.unpack_from(buf, p + 4)
                msg = self._data((src, sport, dst, dport), sid, tsn, flags, buf[p + 16:p + length])
                if msg is not None and looks_like_sip(msg):
                    self.sink.out.append(
                        Payload(frame, time, src, sport, dst, dport, "sctp", msg, ver))
                    self.sink.stats.sctp_messages += 1
            p += (length + 3) & ~3

    def _data(self, flow: tuple[str, int, str, int], sid: int, tsn: int, flags: int,
              data: bytes) -> bytes | None:
        if self._duplicate(flow, tsn):
            return None
        key = (*flow, sid)
        if flags & FLAG_B:
            if flags & FLAG_E:
                return data
            if len(self._partial) >= MAX_TRACKED:
                del self._partial[next(iter(self._partial))]
            self._partial[key] = _Partial(tsn, data)
            return None
        part = self._partial.get(key)
        if part is None or part.next_tsn != tsn or part.size + len(data) > MAX_MESSAGE:
            self._partial.pop(key, None)
            return None
        part.parts.append(data)
        part.size += len(data)
        part.next_tsn = (tsn + 1) & 0xFFFFFFFF
        if flags & FLAG_E:
            del self._partial[key]
            return b"".join(part.parts)
        return None

    def _duplicate(self, flow: tuple[str, int, str, int], tsn: int) -> bool:
        """True for a TSN seen recently on this flow (a retransmission)."""
        seen = self._seen.get(flow)
        if seen is None:
            if len(self._seen) >= MAX_TRACKED:
                self._seen.clear()
            seen = self._seen[flow] = (deque(), set())
        order, tsns = seen
        if tsn in tsns:
            return True
        order.append(tsn)
        tsns.add(tsn)
        if len(order) > 256:
            tsns.discard(order.popleft())
        return False
