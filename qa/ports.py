"""Port allocation: every listener voipqa starts gets a port free on both UDP and TCP.

Ports are never fixed (DESIGN §1): two labs, or a test run beside a lab, must not
collide. The kernel picks an ephemeral port; we keep it only if the same number is
free on the other protocol too, since SIP listens on UDP and TCP at once.
"""

from __future__ import annotations

import socket

from qa.errors import BadInput


def _free_on(port: int, host: str, kind: int) -> bool:
    with socket.socket(socket.AF_INET, kind) as sock:
        if kind == socket.SOCK_STREAM:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def port_is_free(port: int, host: str = "127.0.0.1") -> bool:
    """True when ``port`` can be bound on both UDP and TCP at ``host``."""
    return _free_on(port, host, socket.SOCK_DGRAM) and _free_on(port, host, socket.SOCK_STREAM)


def require_free(port: int, host: str = "127.0.0.1", what: str = "port") -> int:
    """Return ``port`` if free, else raise BadInput naming who wanted it."""
    if not port_is_free(port, host):
        raise BadInput(f"{what}: port {host}:{port} is already taken")
    return port


def allocate_ports(count: int, host: str = "127.0.0.1", *, exclude: set[int] | None = None) -> list[int]:
    """Return ``count`` distinct ports, each free on both UDP and TCP at ``host``.

    Media ports come in even/odd pairs (RTP/RTCP); ask for those with
    ``allocate_rtp_port`` instead.
    """
    taken = set(exclude or ())
    ports: list[int] = []
    for _ in range(count * 50):
        if len(ports) == count:
            break
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.bind((host, 0))
            port = sock.getsockname()[1]
        if port in taken or not _free_on(port, host, socket.SOCK_STREAM):
            continue
        taken.add(port)
        ports.append(port)
    if len(ports) < count:
        raise BadInput(f"could not allocate {count} free ports on {host}")
    return ports


def allocate_rtp_port(host: str = "127.0.0.1") -> int:
    """Return an even UDP port whose odd neighbour (RTCP) is free as well."""
    for _ in range(200):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.bind((host, 0))
            port = sock.getsockname()[1]
        if port % 2:
            port -= 1
        if port > 1024 and _free_on(port, host, socket.SOCK_DGRAM) and _free_on(port + 1, host, socket.SOCK_DGRAM):
            return port
    raise BadInput(f"could not allocate an RTP port pair on {host}")
