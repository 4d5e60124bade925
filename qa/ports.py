"""Port allocation: every listener voipqa starts gets a port free on both UDP and TCP.

Ports are never fixed (DESIGN §1): two labs, or a test run beside a lab, must not
collide. Listeners come from above the kernel's ephemeral range (``ip_local_port_range``,
32768-60999 by default): a port checked free there stays free until its listener binds,
whereas an ephemeral port can be handed to any process's outgoing connection in between
(seen: a carrier failing to start on "Address already in use"). Where the range leaves no
room above it, the kernel picks an ephemeral port as before. A port is kept only if the
same number is free on both protocols, since SIP listens on UDP and TCP at once.

A port checked free is still free for anyone else until its listener binds: threads of one
process allocating at the same moment could draw the same number (seen: two SIPp started
together, the second failing on "Unable to bind remote control socket"). So a process
never hands out a port twice within :data:`HOLD_S`.
"""

from __future__ import annotations

import random
import socket
import threading
import time

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
    pool = listen_pool()
    with _LOCK:
        handed_out = _recently_handed_out()
        for _ in range(count * 50):
            if len(ports) == count:
                break
            port = random.randrange(*pool) if pool else _kernel_port(host)
            if port in taken or port in handed_out or not port_is_free(port, host):
                continue
            taken.add(port)
            ports.append(port)
        now = time.monotonic()
        _HANDED_OUT.update((port, now) for port in ports)
    if len(ports) < count:
        raise BadInput(f"could not allocate {count} free ports on {host}")
    return ports


#: How long a port handed out is not handed out again by the same process: far longer than
#: any listener takes to bind it.
HOLD_S = 120.0
_LOCK = threading.Lock()
_HANDED_OUT: dict[int, float] = {}


def _recently_handed_out() -> set[int]:
    """The ports this process handed out within HOLD_S (older entries are forgotten)."""
    cutoff = time.monotonic() - HOLD_S
    for port in [p for p, at in _HANDED_OUT.items() if at < cutoff]:
        del _HANDED_OUT[port]
    return set(_HANDED_OUT)


#: The fewest ports above the ephemeral range worth a pool of their own.
MIN_LISTEN_POOL = 1000


def listen_pool() -> tuple[int, int] | None:
    """``(low, high)`` (high excluded) of the ports above the ephemeral range, or None
    when fewer than :data:`MIN_LISTEN_POOL` are left there."""
    high = ephemeral_range()[1]
    return (high + 1, 65536) if 65535 - high >= MIN_LISTEN_POOL else None


def _kernel_port(host: str) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


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


#: Media port pools below the kernel's ephemeral range (the kernel never hands these
#: out for port-0 binds or TCP connects, so only voipqa's own allocators compete):
#: the lab's rtpengine block comes from the first, SIPp agents' media ports from the second.
LAB_MEDIA_POOL = (10000, 20000)
AGENT_MEDIA_POOL = (20000, 32000)


def ephemeral_range() -> tuple[int, int]:
    """The kernel's ephemeral port range (``ip_local_port_range``)."""
    try:
        low, high = open("/proc/sys/net/ipv4/ip_local_port_range").read().split()
        return int(low), int(high)
    except (OSError, ValueError):
        return 32768, 60999


def allocate_udp_block(count: int, host: str = "127.0.0.1",
                       pool: tuple[int, int] = AGENT_MEDIA_POOL) -> int:
    """The first port of ``count`` consecutive free UDP ports, even-aligned, from ``pool``.

    Picked at random so concurrent allocators rarely probe the same block; RTP wants
    even/odd pairs (RFC 3550 §11), and SIPp's ``-mp`` takes four (audio and video, each
    with RTCP).
    """
    low, high = pool
    high = min(high, ephemeral_range()[0])
    if high - low <= count:
        raise BadInput(f"no room for {count} UDP ports in {low}-{high} on {host}")
    for _ in range(100):
        start = random.randrange(low, high - count) & ~1
        if all(_free_on(p, host, socket.SOCK_DGRAM) for p in range(start, start + count)):
            return start
    raise BadInput(f"could not find {count} consecutive free UDP ports in {low}-{high} on {host}")
