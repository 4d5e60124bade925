"""Blocking SIP OPTIONS probes over UDP, TCP and TLS: health checks for lab status and start.

The message is built and the answer parsed by ``qa.sip``; only the sockets live here.
"""

from __future__ import annotations

import socket
import ssl

from qa.errors import ParseError
from qa.sip import Headers, Request, Response, StreamFramer, new_branch, new_call_id, new_tag, parse_message


def options_request(host: str, port: int, transport: str, local: tuple[str, int]) -> bytes:
    """An out-of-dialog OPTIONS (RFC 3261 §11) to ``host:port`` from ``local``."""
    suffix = "" if transport == "udp" else f";transport={transport}"
    headers = Headers()
    headers.add("Via", f"SIP/2.0/{transport.upper()} {local[0]}:{local[1]};branch={new_branch()};rport")
    headers.add("Max-Forwards", "70")
    headers.add("From", f"<sip:health@{host}>;tag={new_tag()}")
    headers.add("To", f"<sip:{host}:{port}>")
    headers.add("Call-ID", new_call_id(local[0]))
    headers.add("CSeq", "1 OPTIONS")
    return bytes(Request("OPTIONS", f"sip:{host}:{port}{suffix}", headers))


def _response(data: bytes) -> Response:
    try:
        msg = parse_message(data)
    except ParseError as exc:
        raise OSError(f"not a SIP response: {exc}") from None
    if not isinstance(msg, Response):
        raise OSError(f"expected a response, got {msg.method}")
    return msg


def sip_options(host: str, port: int, transport: str = "udp", timeout: float = 1.0, *,
                cafile: str | None = None, server_name: str | None = None) -> tuple[int, str]:
    """Send one OPTIONS and return (code, reason) of the final response.

    Raises OSError (timeouts and TLS errors included) when nothing usable comes back.
    TLS verifies the server certificate against ``cafile`` with SNI ``server_name``.
    """
    if transport == "udp":
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.settimeout(timeout)
            sock.bind((host, 0))
            sock.sendto(options_request(host, port, "udp", sock.getsockname()), (host, port))
            while True:
                response = _response(sock.recv(65535))
                if response.status >= 200:
                    return response.status, response.reason
    raw = socket.create_connection((host, port), timeout=timeout)
    try:
        sock: socket.socket = raw
        if transport == "tls":
            ctx = ssl.create_default_context(cafile=cafile) if cafile else ssl._create_unverified_context()
            sock = ctx.wrap_socket(raw, server_hostname=server_name or host)
        sock.sendall(options_request(host, port, transport, sock.getsockname()))
        return _read_final(sock)
    finally:
        raw.close()


def _read_final(sock: socket.socket) -> tuple[int, str]:
    framer = StreamFramer()
    while True:
        chunk = sock.recv(65535)
        if not chunk:
            raise OSError("connection closed before a response")
        try:
            messages = framer.feed(chunk)
        except ParseError as exc:
            raise OSError(f"not a SIP response: {exc}") from None
        for data in messages:
            response = _response(data)
            if response.status >= 200:
                return response.status, response.reason
