"""rtpengine for the lab: its command line, its media port range and an ng-protocol ping.

rtpengine anchors every call's media (Kamailio's rtpengine module talks to it over the
ng control port). Its ``--timeout``/``--silent-timeout`` make it drop calls whose RTP
stopped, and ``--b2b-url`` + ``--xmlrpc-format=2`` make it tell Kamailio so
(XML-RPC ``dlg.terminate_dlg``), which then ends the SIP call: see the header of
``lab/kamailio.cfg``.
"""

from __future__ import annotations

import secrets
import socket
from pathlib import Path

from qa.ports import LAB_MEDIA_POOL, allocate_udp_block

#: media ports per lab: 4 per call (RTP+RTCP on both legs), so ~100 concurrent calls
MEDIA_PORTS = 400


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


def allocate_media_range(host: str, count: int = MEDIA_PORTS) -> tuple[int, int]:
    """An even-aligned block of ``count`` UDP ports, all free now, below the kernel's
    ephemeral range (``qa.ports.LAB_MEDIA_POOL``), so ports other tools get from the
    kernel, and SIPp agents' media ports, never land in it."""
    start = allocate_udp_block(count, host, LAB_MEDIA_POOL)
    return start, start + count - 1


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
