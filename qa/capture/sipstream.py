"""SIP message framing on a reassembled byte stream: plain SIP (RFC 3261 §18.3) and
SIP over WebSocket (RFC 7118 over RFC 6455 frames).

Sans-I/O: bytes in order in, complete SIP messages out. Problems go to a
:class:`~qa.capture.sink.Sink`.
"""

from __future__ import annotations

import re

from qa.capture.sink import Sink
from qa.errors import ParseError
from qa.sip import StreamFramer

#: A SIP start line (RFC 3261 §7.1 Request-Line, §7.2 Status-Line), strict enough to be
#: searched for in a stream that lost its place: an upper-case method (as every
#: registered one is) and a Request-URI with a scheme.
START_RE = re.compile(rb"[A-Z][A-Z0-9.!%*_+`'~-]* [A-Za-z][A-Za-z0-9+.-]*:[^ \r\n]* SIP/2\.0\r?\n"
                      rb"|SIP/2\.0 [1-9][0-9][0-9] ")

#: Bytes a stream may be searched for a first SIP start line before it is given up.
HUNT_LIMIT = 1 << 16
#: Bytes of unmatched data kept while hunting, so a start line split over segments is found.
HUNT_TAIL = 2048


def looks_like_sip(data: bytes) -> bool:
    """True when ``data`` begins (after CRLF keep-alives) with a SIP start line."""
    return START_RE.match(data, len(data) - len(data.lstrip(b"\r\n"))) is not None


class SipStream:
    """One direction of a stream carrying SIP, framed by :class:`qa.sip.StreamFramer`.

    Starts *hunting* for a start line (mid-stream pickup, or after a gap), then frames
    by Content-Length. A framing error is reported and the data re-split at start lines
    so the messages around the bad one are still delivered.
    """

    __slots__ = ("framer", "mirror", "hunting", "hunted", "dead", "_hunt_buf")

    def __init__(self) -> None:
        self.framer = StreamFramer()
        self.mirror = b""  # the framer's buffered bytes (the stream's unconsumed tail)
        self.hunting = True
        self.hunted = 0
        self.dead = False
        self._hunt_buf = b""

    def lost(self) -> None:
        """Bytes are missing from the stream: drop partial data, hunt for the next message."""
        self.framer = StreamFramer()
        self.mirror = b""
        self.hunting = True
        self.hunted = 0
        self._hunt_buf = b""

    def feed(self, data: bytes, frame: int, time: float, sink: Sink) -> list[bytes]:
        """Add in-order stream bytes; return the SIP messages they complete."""
        if self.hunting:
            data = self._hunt(data)
            if not data:
                return []
        try:
            msgs = self.framer.feed(data)
        except ParseError:
            return self._recover(self.mirror + data, frame, time, sink)
        self._remember(data)
        return msgs

    def _hunt(self, data: bytes) -> bytes:
        buf = self._hunt_buf + data if self._hunt_buf else data
        m = START_RE.search(buf)
        if m is not None:
            self.hunting = False
            self._hunt_buf = b""
            return buf[m.start():]
        self.hunted += len(data)
        if self.hunted > HUNT_LIMIT:
            self.dead = True
        self._hunt_buf = buf[-HUNT_TAIL:]
        return b""

    def _remember(self, data: bytes) -> None:
        held = self.framer.buffered
        if not held:
            self.mirror = b""
        elif held <= len(data):
            self.mirror = data[len(data) - held:]
        else:
            self.mirror = (self.mirror + data)[-held:]

    def _recover(self, whole: bytes, frame: int, time: float, sink: Sink) -> list[bytes]:
        """Re-frame ``whole`` piece by piece, split at start lines, skipping bad pieces.

        The failing piece fails again here and is reported once.
        """
        starts = [m.start() for m in START_RE.finditer(whole)]
        if not starts or starts[0]:
            starts.insert(0, 0)
        starts.append(len(whole))
        framer, out = StreamFramer(), []
        for a, b in zip(starts, starts[1:]):
            try:
                out += framer.feed(whole[a:b])
            except ParseError as err:
                sink.problem(frame, time, "tcp.sip.framing",
                             f"frame {frame}: SIP framing failed ({err.reason}); "
                             "message skipped, stream resynchronised")
                framer = StreamFramer()
        self.framer = framer
        held = framer.buffered
        self.mirror = whole[len(whole) - held:] if held else b""
        return out


class WsStream:
    """One direction of a SIP-over-WebSocket connection (RFC 7118, RFC 6455 §5.2).

    First the HTTP Upgrade request or 101 response (RFC 6455 §4), which must name the
    ``sip`` subprotocol; then frames, unmasked, reassembled from continuations. Each
    text or binary message is one SIP message (RFC 7118 §5.2).
    """

    __slots__ = ("buf", "handshake", "dead", "frag")

    MAX_HANDSHAKE = 16384
    MAX_MESSAGE = 1 << 18

    def __init__(self) -> None:
        self.buf = bytearray()
        self.handshake = True
        self.dead = False
        self.frag: bytearray | None = None

    def feed(self, data: bytes, frame: int, time: float, sink: Sink) -> list[bytes]:
        """Add in-order stream bytes; return the complete WebSocket messages."""
        self.buf += data
        if self.handshake and not self._upgrade(frame, time, sink):
            return []
        out: list[bytes] = []
        while not self.dead:
            msg = self._frame(frame, time, sink)
            if msg is None:
                break
            if msg:
                out.append(msg)
        return out

    def _upgrade(self, frame: int, time: float, sink: Sink) -> bool:
        end = self.buf.find(b"\r\n\r\n")
        if end < 0:
            if len(self.buf) > self.MAX_HANDSHAKE:
                self._die()
            return False
        head = bytes(self.buf[:end]).lower()
        del self.buf[:end + 4]
        self.handshake = False
        if b"websocket" not in head or not re.search(rb"sec-websocket-protocol:[^\r\n]*\bsip\b", head):
            self._die()  # some other HTTP or WebSocket: not ours
            return False
        return True

    def _die(self) -> None:
        self.dead = True
        self.buf = bytearray()
        self.frag = None

    def _frame(self, frame: int, time: float, sink: Sink) -> bytes | None:
        """Consume one frame; its message when complete, b"" for none yet, None if short."""
        buf = self.buf
        if len(buf) < 2:
            return None
        b0, b1 = buf[0], buf[1]
        size, p = b1 & 0x7F, 2
        if size == 126:
            if len(buf) < 4:
                return None
            size, p = int.from_bytes(buf[2:4], "big"), 4
        elif size == 127:
            if len(buf) < 10:
                return None
            size, p = int.from_bytes(buf[2:10], "big"), 10
        if size > self.MAX_MESSAGE:
            sink.problem(frame, time, "ws.oversize",
                         f"frame {frame}: WebSocket frame of {size} bytes; stream not decoded")
            self._die()
            return None
        key = bytes(buf[p:p + 4]) if b1 & 0x80 else b""
        p += len(key)
        if len(buf) < p + size or len(key) not in (0, 4):
            return None
        payload = _unmask(bytes(buf[p:p + size]), key)
        del buf[:p + size]
        return self._message(b0, payload, frame, time, sink)

    def _message(self, b0: int, payload: bytes, frame: int, time: float, sink: Sink) -> bytes:
        opcode, fin = b0 & 0x0F, b0 & 0x80
        if b0 & 0x40:
            sink.problem(frame, time, "ws.compressed",
                         f"frame {frame}: compressed WebSocket message (RSV1); not decoded")
            return b""
        if opcode in (1, 2):
            if fin:
                return payload
            self.frag = bytearray(payload)
        elif opcode == 0 and self.frag is not None:
            self.frag += payload
            if len(self.frag) > self.MAX_MESSAGE:
                self.frag = None
            elif fin:
                msg, self.frag = bytes(self.frag), None
                return msg
        elif opcode == 8:
            self._die()
        return b""


def _unmask(data: bytes, key: bytes) -> bytes:
    """XOR ``data`` with the 4-byte masking ``key`` (RFC 6455 §5.3)."""
    if not key or not data:
        return data
    n = len(data)
    mask = (key * (n // 4 + 1))[:n]
    return (int.from_bytes(data, "big") ^ int.from_bytes(mask, "big")).to_bytes(n, "big")
