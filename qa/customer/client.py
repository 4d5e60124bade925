"""The customer's asyncio shell: one connection to the platform driving a sans-I/O UAC.

UDP goes through :class:`qa.transport.UdpEndpoint`; TCP and TLS are one
``asyncio.open_connection`` (TLS: ``ssl.create_default_context(cafile=CA)``, SNI
``server_hostname``, hostname checked) framed by :class:`qa.sip.StreamFramer`
(RFC 3261 §18.3). Every request and response of the call uses that connection
(RFC 3261 §18.1.1, §18.2.2 — the platform record-routes, so the dialog's next hop is the
platform). Nothing here raises for a network problem: a refused connection or a failed TLS
handshake becomes a :class:`CustomerResult` with ``final_code`` None, ``error`` and, for
TLS, a :class:`TlsReport` saying why.

    result = asyncio.run(place_call(CallConfig(from_user="1001", password=..., to_user="1555000100",
                                               target_host=host, target_port=port, transport="tls",
                                               tls_server_name="lab.voipqa.test", ca_file=ca),
                                    timeout_s=30))
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import ssl
import time
from typing import Callable

from qa.customer.result import CustomerResult, TlsReport
from qa.customer.tls import classify_failure, fetch_peer_cert, fill_cert, report_from_ssl, verifying_context
from qa.customer.uac import CallConfig, StartMedia, StopMedia, UacCall, UacRegister, _UacCore
from qa.errors import ParseError
from qa.ports import allocate_rtp_port
from qa.sip import StreamFramer
from qa.sip.timers import CancelTimer, Send, StartTimer
from qa.sip.transaction import Action
from qa.sipp.agent import mask_secrets
from qa.transport import UdpEndpoint

__all__ = ["place_call", "register"]

log = logging.getLogger(__name__)
Deliver = Callable[[bytes], None]
CONNECT_TIMEOUT = 5.0


async def place_call(config: CallConfig, *, timeout_s: float = 30.0) -> CustomerResult:
    """Place one call (INVITE -> auth -> answer -> BYE [-> credential replay]); never raises
    for network or TLS problems (they end up in ``result.error`` / ``result.tls``)."""
    return await _run(UacCall, config, timeout_s)


async def register(config: CallConfig, *, timeout_s: float = 15.0) -> CustomerResult:
    """Register ``config.from_user`` (REGISTER -> 401 -> REGISTER with credentials -> 200/403)."""
    return await _run(UacRegister, config, timeout_s)


# ---------------------------------------------------------------- links
class _UdpLink:
    """UDP: one datagram is one message (RFC 3261 §18.1.1)."""

    def __init__(self, endpoint: UdpEndpoint) -> None:
        self.endpoint = endpoint
        self.local = endpoint.local

    def send(self, data: bytes, addr: tuple[str, int]) -> None:
        self.endpoint.send(data, addr)

    async def close(self) -> None:
        await self.endpoint.close()


class _StreamLink:
    """TCP or TLS: the one connection, framed by Content-Length (RFC 3261 §18.3)."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        sock = writer.get_extra_info("sockname")
        self.local = (sock[0], sock[1])
        self.pump_task: asyncio.Task | None = None

    def send(self, data: bytes, addr: tuple[str, int]) -> None:
        if not self.writer.is_closing():
            self.writer.write(data)

    async def pump(self, deliver: Deliver, closed: Callable[[str], None]) -> None:
        framer = StreamFramer()
        try:
            while data := await self.reader.read(65536):
                for message in framer.feed(data):
                    deliver(message)
            closed("connection closed by the platform")
        except (OSError, ssl.SSLError, ParseError) as exc:
            closed(f"connection lost: {exc}")

    async def close(self) -> None:
        if self.pump_task is not None:
            self.pump_task.cancel()
        self.writer.close()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.writer.wait_closed(), 2.0)


# ---------------------------------------------------------------- opening
async def _open_stream(config: CallConfig) -> tuple[_StreamLink | None, TlsReport | None, str | None]:
    """(link, tls report, error): a TCP connection, or TLS verified against the CA with SNI."""
    tls = config.transport == "tls"
    sni = config.tls_server_name or config.target_host
    kwargs = {"ssl": verifying_context(config.ca_file), "server_hostname": sni} if tls else {}
    try:
        reader, writer = await asyncio.wait_for(asyncio.open_connection(
            config.target_host, config.target_port, local_addr=(config.local_host, 0), **kwargs),
            CONNECT_TIMEOUT)
    except (OSError, ssl.SSLError, asyncio.TimeoutError) as exc:
        if not tls:
            return None, None, f"tcp connect to {config.target_host}:{config.target_port} failed: {exc}"
        report = classify_failure(exc, config.target_host, config.target_port, sni)
        der = await asyncio.to_thread(fetch_peer_cert, config.target_host, config.target_port, sni,
                                      CONNECT_TIMEOUT)
        fill_cert(report, der)
        return None, report, f"tls: {report}"
    report = report_from_ssl(writer.get_extra_info("ssl_object"), config.target_host,
                             config.target_port, sni) if tls else None
    return _StreamLink(reader, writer), report, None


def _failed(kind: type[_UacCore], config: CallConfig, error: str, tls: TlsReport | None) -> CustomerResult:
    return CustomerResult(call_id="", transport=config.transport, method=kind.method,
                          from_user=config.from_user, to_user=config.to_user or None,
                          error=error, tls=tls)


# ---------------------------------------------------------------- driving
class _MediaSender:
    """Plays the answer's codec from the offer's port, paced on the loop's clock.

    The packets are qa.sipp.media's audio (the same tone the SIPp customer plays), sent
    at their 20 ms offsets; a late loop catches up rather than drifting (RTP timestamps
    stay on the sender's clock, RFC 3550 §5.1).
    """

    def __init__(self, socket: UdpEndpoint) -> None:
        self.socket = socket
        self.task: asyncio.Task | None = None
        self.sent = 0
        self.what: StartMedia | None = None

    def start(self, order: StartMedia) -> None:
        self.stop()
        self.what, self.sent = order, 0
        self.task = asyncio.get_running_loop().create_task(self._play(order))

    async def _play(self, order: StartMedia) -> None:
        from qa.sipp.media import audio_packets

        loop = asyncio.get_running_loop()
        start = loop.time()
        for offset, packet in audio_packets(order.codec, max(order.seconds, 0.02)):
            delay = start + offset - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            self.socket.send(bytes(packet), order.addr)
            self.sent += 1

    def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()
            self.task = None

    def describe(self) -> str | None:
        """The record's ``media_sent`` line, or None when no media was started."""
        if self.what is None:
            return None
        what = self.what
        return f"{what.codec} (PT {what.payload_type}): {self.sent} packets, {self.sent * 0.02:.2f} s"


class _Driver:
    """Executes a UAC's actions: sends on the link, keeps its timers on the loop, plays RTP."""

    def __init__(self, uac: _UacCore, link: _UdpLink | _StreamLink, media: UdpEndpoint | None = None) -> None:
        self.uac, self.link = uac, link
        self.loop = asyncio.get_running_loop()
        self.timers: dict[object, asyncio.TimerHandle] = {}
        self.finished = asyncio.Event()
        self.media = _MediaSender(media) if media is not None else None

    def run(self, actions: list[Action]) -> None:
        for action in actions:
            if isinstance(action, Send):
                log.debug("customer sends to %s:%s\n%s", *action.addr,
                          mask_secrets(action.data.decode("utf-8", "replace")))
                self.link.send(action.data, action.addr)
            elif isinstance(action, StartTimer):
                self._cancel(action.key)
                self.timers[action.key] = self.loop.call_later(action.delay, self._fire, action.key)
            elif isinstance(action, CancelTimer):
                self._cancel(action.key)
            elif isinstance(action, StartMedia) and self.media is not None:
                self.media.start(action)
            elif isinstance(action, StopMedia) and self.media is not None:
                self.media.stop()
        if self.uac.done:
            self.finished.set()

    def _cancel(self, key: object) -> None:
        handle = self.timers.pop(key, None)
        if handle is not None:
            handle.cancel()

    def _guarded(self, event: Callable[[], list[Action]]) -> None:
        try:
            self.run(event())
        except Exception as exc:          # a bug must end the call with a reason, not hang it
            log.exception("customer UAC failed")
            self.uac.result.error = f"internal error: {exc!r}"
            self.finished.set()

    def _fire(self, key: object) -> None:
        self.timers.pop(key, None)
        self._guarded(lambda: self.uac.on_timer(key, self.loop.time()))

    def deliver(self, data: bytes) -> None:
        log.debug("customer received\n%s", mask_secrets(data.decode("utf-8", "replace")))
        self._guarded(lambda: self.uac.on_message(data, self.loop.time()))

    def closed(self, reason: str) -> None:
        if not self.uac.done:
            self._guarded(lambda: self.uac.abort(self.loop.time(), reason))

    async def drive(self, timeout_s: float) -> None:
        self._guarded(lambda: self.uac.start(self.loop.time()))
        try:
            await asyncio.wait_for(self.finished.wait(), timeout_s)
        except asyncio.TimeoutError:
            self._guarded(lambda: self.uac.abort(self.loop.time(), f"no result within {timeout_s:g} s"))
            await asyncio.sleep(0.1)          # let the CANCEL/BYE leave
        finally:
            for handle in self.timers.values():
                handle.cancel()
            self.timers.clear()
            if self.media is not None:
                self.media.stop()
                self.uac.result.media_sent = self.media.describe() or self.uac.result.media_sent


async def _open_link(config: CallConfig, deliver: Deliver) -> tuple[
        _UdpLink | _StreamLink | None, TlsReport | None, str | None]:
    if config.transport == "udp":
        try:
            endpoint = await UdpEndpoint.open(config.local_host, 0, lambda data, peer, tr: deliver(data))
        except OSError as exc:
            return None, None, f"udp bind on {config.local_host} failed: {exc}"
        return _UdpLink(endpoint), None, None
    if config.transport in ("tcp", "tls"):
        return await _open_stream(config)
    return None, None, f"unknown transport {config.transport!r} (udp, tcp, tls)"


async def _media_sink(config: CallConfig, kind: type[_UacCore]) -> tuple[CallConfig, UdpEndpoint | None]:
    """Bind the SDP's RTP port: RTP is sent from it (symmetric RTP); what comes back is
    dropped (the wire witness judges it in the run's capture)."""
    if kind is not UacCall or config.media_port:
        return config, None
    port = allocate_rtp_port(config.local_host)
    sink = await UdpEndpoint.open(config.local_host, port, lambda data, peer, tr: None)
    return dataclasses.replace(config, media_port=port), sink


async def _run(kind: type[_UacCore], config: CallConfig, timeout_s: float) -> CustomerResult:
    driver: _Driver | None = None
    link, report, error = await _open_link(config, lambda data: driver and driver.deliver(data))
    if link is None:
        return _failed(kind, config, error or "no connection", report)
    sink = None
    try:
        config, sink = await _media_sink(config, kind)
        config = dataclasses.replace(config, local_host=link.local[0], local_port=link.local[1])
        driver = _Driver(kind(config, time.time), link, sink)
        if isinstance(link, _StreamLink):
            link.pump_task = asyncio.get_running_loop().create_task(link.pump(driver.deliver, driver.closed))
        await driver.drive(timeout_s)
        driver.uac.result.tls = report
        return driver.uac.result
    finally:
        await link.close()
        if sink is not None:
            await sink.close()

