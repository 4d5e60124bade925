"""Tiny blocking SIP probes: OPTIONS over UDP/TCP/TLS (health checks, status)."""

from __future__ import annotations

import socket
import ssl
import uuid


def options_request(host: str, port: int, transport: str, local: tuple[str, int]) -> bytes:
    tr = {"udp": "UDP", "tcp": "TCP", "tls": "TLS"}[transport]
    suffix = "" if transport == "udp" else f";transport={transport}"
    return (
        f"OPTIONS sip:{host}:{port}{suffix} SIP/2.0\r\n"
        f"Via: SIP/2.0/{tr} {local[0]}:{local[1]};branch=z9hG4bK{uuid.uuid4().hex};rport\r\n"
        "Max-Forwards: 70\r\n"
        f"From: <sip:health@{host}>;tag={uuid.uuid4().hex[:10]}\r\n"
        f"To: <sip:{host}:{port}>\r\n"
        f"Call-ID: health-{uuid.uuid4().hex}\r\n"
        "CSeq: 1 OPTIONS\r\n"
        "Content-Length: 0\r\n\r\n"
    ).encode()


def _status_line(data: bytes) -> tuple[int, str]:
    line = data.split(b"\r\n", 1)[0].decode("utf-8", "replace")
    parts = line.split(" ", 2)
    if len(parts) < 2 or not parts[0].startswith("SIP/2.0") or not parts[1].isdigit():
        raise OSError(f"not a SIP response: {line!r}")
    return int(parts[1]), parts[2] if len(parts) > 2 else ""


def sip_options(host: str, port: int, transport: str = "udp", timeout: float = 1.0, *,
                cafile: str | None = None, server_name: str | None = None) -> tuple[int, str]:
    """Send one OPTIONS and return (code, reason) of the first final response; raises
    OSError (incl. timeout, ssl errors) when nothing usable comes back."""
    if transport == "udp":
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.settimeout(timeout)
            sock.bind((host, 0))
            sock.sendto(options_request(host, port, "udp", sock.getsockname()), (host, port))
            while True:
                code, reason = _status_line(sock.recv(65535))
                if code >= 200:
                    return code, reason
    raw = socket.create_connection((host, port), timeout=timeout)
    try:
        sock: socket.socket = raw
        if transport == "tls":
            ctx = ssl.create_default_context(cafile=cafile) if cafile else ssl._create_unverified_context()
            sock = ctx.wrap_socket(raw, server_hostname=server_name or host)
        sock.sendall(options_request(host, port, transport, sock.getsockname()))
        buf = b""
        while b"\r\n\r\n" not in buf:
            chunk = sock.recv(65535)
            if not chunk:
                raise OSError("connection closed before a response")
            buf += chunk
        return _status_line(buf)
    finally:
        raw.close()
