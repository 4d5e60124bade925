"""rtpengine for the lab: its command line, its media port range and an ng-protocol ping.

rtpengine anchors every call's media (Kamailio's rtpengine module talks to it over the
ng control port). Its ``--timeout``/``--silent-timeout`` make it drop calls whose RTP
stopped, and ``--b2b-url`` + ``--xmlrpc-format=2`` make it tell Kamailio so
(XML-RPC ``dlg.terminate_dlg``), which then ends the SIP call: see the header of
``lab/kamailio.cfg``.
"""

from __future__ import annotations

import random
import secrets
import socket
from pathlib import Path

from qa.errors import BadInput

#: media ports per lab: 4 per call (RTP+RTCP on both legs), so ~100 concurrent calls
MEDIA_PORTS = 400
_MEDIA_FLOOR = 20000


def command(exe: str, host: str, ng_port: int, rtp_min: int, rtp_max: int, *, sip_port: int,
            timeout_s: int, pidfile: Path) -> list[str]:
    """The rtpengine argv: userspace only, foreground, logging to stderr, no config file."""
    return [
        exe, "--config-file=none", "--foreground", "--table=-1", "--no-fallback",
        f"--interface={host}", f"--listen-ng={host}:{ng_port}",
        f"--port-min={rtp_min}", f"--port-max={rtp_max}",
        f"--timeout={timeout_s}", f"--silent-timeout={timeout_s}",
        f"--b2b-url=http://{host}:{sip_port}/RPC2", "--xmlrpc-format=2",
        "--num-threads=2", "--delete-delay=0", "--log-stderr", "--log-level=6",
        f"--pidfile={pidfile}",
    ]


def _ephemeral_low() -> int:
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def _udp_free(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def allocate_media_range(host: str, count: int = MEDIA_PORTS) -> tuple[int, int]:
    """An even-aligned block of ``count`` UDP ports, all free now, below the kernel's
    ephemeral range, so the ports other tools get from the kernel never land in it."""
    top = _ephemeral_low() - count
    if top <= _MEDIA_FLOOR:
        raise BadInput(f"no room for {count} media ports below the ephemeral port range")
    for _ in range(40):
        start = random.randrange(_MEDIA_FLOOR, top) & ~1
        if all(_udp_free(host, p) for p in range(start, start + count)):
            return start, start + count - 1
    raise BadInput(f"could not find {count} consecutive free UDP ports on {host} for rtpengine")


def ping(host: str, port: int, timeout: float = 1.0) -> bool:
    """ng protocol ``ping`` (bencoded, cookie-prefixed): True when rtpengine says pong."""
    cookie = secrets.token_hex(6).encode()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(timeout)
        try:
            sock.sendto(cookie + b" d7:command4:pinge", (host, port))
            data = sock.recv(4096)
        except OSError:
            return False
    return data.startswith(cookie + b" ") and b"pong" in data
