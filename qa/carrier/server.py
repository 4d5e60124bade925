"""The carrier's I/O shell: transports + the sans-I/O :class:`~qa.carrier.uas.Carrier` +
RTP sockets (echo, or generated silence/tone at 50 packets/s) + the CDR file, on one asyncio loop."""

from __future__ import annotations

import asyncio
import errno
import logging
import signal
import socket
import time
from dataclasses import replace
from pathlib import Path
from typing import Any, Hashable

from qa.carrier.cdr import CdrWriter
from qa.carrier.media import FRAME_S, MediaSession
from qa.carrier.plan import NumberPlan
from qa.carrier.uas import (Action, Carrier, CancelTimer, CloseMedia, OpenMedia, Send, StartMedia,
                            StartTimer, StopMedia, WriteCdr)
from qa.transport import Transport, open_endpoints

log = logging.getLogger(__name__)


#: at most this many packets are sent at once to catch up after the loop was busy
_MAX_BURST = 5

#: SO_RCVBUF / SO_SNDBUF asked for the SIP UDP socket: the default ~208 KB overflows (per-socket
#: drops in /proc/net/udp) when a load burst arrives while the loop is busy; the kernel caps
#: it at net.core.rmem_max / wmem_max (and reports twice what it grants)
UDP_BUFFER_BYTES = 4 * 1024 * 1024


def widen_udp_buffers(endpoint: Transport) -> tuple[int, int] | None:
    """Ask for :data:`UDP_BUFFER_BYTES` on a UDP endpoint's socket; the effective
    (receive, send) sizes the kernel reports, or None for an endpoint without a socket."""
    transport = getattr(endpoint, "_transport", None)
    sock = transport.get_extra_info("socket") if transport is not None else None
    if sock is None:
        return None
    for option in (socket.SO_RCVBUF, socket.SO_SNDBUF):
        try:
            sock.setsockopt(socket.SOL_SOCKET, option, UDP_BUFFER_BYTES)
        except OSError as exc:          # never fatal: the default buffer still works
            log.warning("cannot set socket buffer %s: %s", option, exc)
    return (sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF),
            sock.getsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF))


class _RtpPort:
    """A non-blocking UDP socket for one call: echo (symmetric RTP) or generated RTP."""

    def __init__(self, server: "CarrierServer", call: str, host: str, session: MediaSession) -> None:
        self.server = server
        self.call = call
        self.session = session
        self.sock = _bind_even_port(host)
        self.port = self.sock.getsockname()[1]
        self.loop = asyncio.get_running_loop()
        self.loop.add_reader(self.sock.fileno(), self._readable)
        self._tick: asyncio.TimerHandle | None = None
        self._due = 0.0

    def _readable(self) -> None:
        for _ in range(64):
            try:
                data, addr = self.sock.recvfrom(4096)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:       # ICMP unreachable surfacing on a later recv
                continue
            echo, heard = self.session.on_packet(data, addr)
            if echo:
                try:
                    self.sock.sendto(data, addr)
                except OSError:
                    pass
            for h in heard:
                self.server.feed(self.server.carrier.on_dtmf(self.call, h.digit, time.time(), h.via))

    def start_sending(self) -> None:
        """Generate RTP every 20 ms on the loop's clock (no drift: due times advance by FRAME_S)."""
        self.session.start()
        if self.session.sending and self._tick is None:
            self._due = self.loop.time()
            self._send_due()

    def _send_due(self) -> None:
        now = self.loop.time()
        if now - self._due > _MAX_BURST * FRAME_S:      # the loop stalled: do not flood, resync
            self._due = now - FRAME_S
        while self._due <= now:
            item = self.session.next_packet()
            if item is None:
                self._tick = None
                return
            try:
                self.sock.sendto(*item)
            except OSError:
                pass
            self._due += FRAME_S
        self._tick = self.loop.call_at(self._due, self._send_due)

    def close(self) -> None:
        if self._tick is not None:
            self._tick.cancel()
            self._tick = None
        if self.sock.fileno() >= 0:
            self.loop.remove_reader(self.sock.fileno())
            self.sock.close()


def _bind_even_port(host: str) -> socket.socket:
    last: OSError | None = None
    for _ in range(50):
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            sock.bind((host, 0))
        except OSError as exc:
            sock.close()
            last = exc
            continue
        if sock.getsockname()[1] % 2 == 0:
            sock.setblocking(False)
            return sock
        sock.close()
    raise last or OSError(errno.EADDRINUSE, "no even RTP port free")


class CarrierServer:
    """Run a :class:`Carrier` on real sockets. ``await start()``, then ``await stop()``."""

    def __init__(self, plan: NumberPlan, name: str, host: str, port: int, cdr_path: Path | str,
                 transports: list[str] | tuple[str, ...] = ("udp", "tcp"), *,
                 t1: float = 0.5, t2: float = 4.0, t4: float = 5.0) -> None:
        self.plan = plan
        self.name = name
        self.host = host
        self.port = port
        self.transport_names = list(transports)
        self.cdr = CdrWriter(cdr_path)
        self.timing = dict(t1=t1, t2=t2, t4=t4)
        self.carrier: Carrier = None  # type: ignore[assignment]   # built once the port is known
        self.transports: dict[str, Transport] = {}
        self._timers: dict[Hashable, asyncio.TimerHandle] = {}
        self._media: dict[str, _RtpPort] = {}
        self._closed_media: dict[str, MediaSession] = {}
        self._stopped = asyncio.Event()
        self.udp_buffers: tuple[int, int] | None = None   # effective (receive, send) bytes

    # ---------------------------------------------------------------- lifecycle
    async def start(self) -> None:
        names = self.transport_names
        port = self.port
        if port == 0 and len(names) > 1:
            # same number on every transport: let the first pick, the others follow
            first = await open_endpoints(self.host, 0, self._on_datagram, names[:1])
            port = first[0].local[1]
            try:
                rest = await open_endpoints(self.host, port, self._on_datagram, names[1:])
            except BaseException:
                for ep in first:
                    await ep.close()
                raise
            eps = first + rest
        else:
            eps = await open_endpoints(self.host, port, self._on_datagram, names)
            port = eps[0].local[1]
        self.port = port
        self.transports = {ep.name: ep for ep in eps}
        if "udp" in self.transports:
            self.udp_buffers = widen_udp_buffers(self.transports["udp"])
        self.carrier = Carrier(self.plan, self.name, (self.host, port), **self.timing)

    async def stop(self, grace: float = 0.3) -> None:
        """End live calls (BYE / 480, CDR lines written), then close everything."""
        if self.carrier is not None:
            self.feed(self.carrier.shutdown(time.time()))
        if grace > 0:
            await asyncio.sleep(grace)          # let BYEs leave and 200s come back
        for handle in self._timers.values():
            handle.cancel()
        self._timers.clear()
        for media in list(self._media.values()):
            media.close()
        self._media.clear()
        for ep in self.transports.values():
            await ep.close()
        self.transports.clear()
        self.cdr.close()
        self._stopped.set()

    async def wait_stopped(self) -> None:
        await self._stopped.wait()

    # ---------------------------------------------------------------- events in
    def _on_datagram(self, data: bytes, peer: tuple[str, int], transport: Any) -> None:
        self.feed(self.carrier.on_message(data, peer, transport.name, time.time()))

    def _fire(self, key: Hashable) -> None:
        self._timers.pop(key, None)
        self.feed(self.carrier.on_timer(key, time.time()))

    # ---------------------------------------------------------------- actions out
    def feed(self, actions: list[Action]) -> None:
        queue = list(actions)
        while queue:
            action = queue.pop(0)
            try:
                more = self._do(action)
            except Exception:
                log.exception("carrier action %r failed", action)
                continue
            if more:
                queue[0:0] = more

    def _do(self, action: Action) -> list[Action] | None:
        if isinstance(action, Send):
            ep = self.transports.get(action.transport) or self.transports.get("udp")
            if ep is None:
                log.warning("no %s transport to send to %s", action.transport, action.addr)
                return None
            ep.send(action.data, action.addr)
        elif isinstance(action, StartTimer):
            old = self._timers.pop(action.key, None)
            if old is not None:
                old.cancel()
            loop = asyncio.get_running_loop()
            self._timers[action.key] = loop.call_later(max(0.0, action.delay), self._fire, action.key)
        elif isinstance(action, CancelTimer):
            old = self._timers.pop(action.key, None)
            if old is not None:
                old.cancel()
        elif isinstance(action, OpenMedia):
            session = MediaSession(action.spec)
            try:
                rtp = _RtpPort(self, action.call, self.carrier.media_address, session)
            except OSError as exc:
                log.warning("cannot open an RTP port: %s", exc)
                return self.carrier.media_failed(action.call, time.time())
            self._media[action.call] = rtp
            return self.carrier.media_ready(action.call, self.carrier.media_address, rtp.port, time.time())
        elif isinstance(action, StartMedia):
            rtp = self._media.get(action.call)
            if rtp is not None:
                rtp.start_sending()
        elif isinstance(action, StopMedia):
            rtp = self._media.get(action.call)
            if rtp is not None:
                rtp.session.stopped = True
        elif isinstance(action, CloseMedia):
            rtp = self._media.pop(action.call, None)
            if rtp is not None:
                rtp.close()
                self._closed_media[action.call] = rtp.session
        elif isinstance(action, WriteCdr):
            record = action.record
            session = self._closed_media.pop(action.call, None)
            if session is None and action.call in self._media:
                session = self._media[action.call].session
            if session is not None:
                record = replace(record, rtp_packets_in=session.packets_in, rtp_packets_out=session.packets_out,
                                 rtp_payload_types_in=tuple(sorted(session.payload_types_in)),
                                 rtp_payload_types_out=tuple(sorted(session.payload_types_out)))
            self.cdr.write(record)
        return None


async def run(server: CarrierServer, on_ready: Any = None) -> None:
    """Start, announce, serve until SIGTERM/SIGINT, stop cleanly."""
    await server.start()
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        try:
            loop.add_signal_handler(sig, stop.set)
        except (NotImplementedError, RuntimeError):
            pass
    if on_ready is not None:
        on_ready(server)
    try:
        await stop.wait()
    finally:
        await server.stop()
