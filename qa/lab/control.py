"""The supervisor's control socket: stop/start/pause/resume a carrier of a running lab.

The carriers are the supervisor's children (PR_SET_PDEATHSIG, restarted on the same
port with the same CDR file), so only the supervisor may stop and start them. It listens
on a UNIX stream socket in the run directory; a client sends one JSON line
``{"op": "stop", "name": "carrier-c"}`` and reads one JSON line back:
``{"ok": true, "pid": 1234}`` or ``{"ok": false, "error": "...", "bad_input": true}``.
"""

from __future__ import annotations

import hashlib
import json
import socket
from pathlib import Path
from typing import Any

from qa.errors import BadInput, VoipqaError

OPS = ("stop", "start", "pause", "resume")
_MAX_LINE = 4096


def socket_path(run_dir: Path | str) -> Path:
    """``RUN_DIR/supervisor.sock``; a short /tmp path when that would exceed the
    107-byte limit of UNIX socket paths."""
    run_dir = Path(run_dir)
    path = run_dir / "supervisor.sock"
    if len(str(path)) <= 100:
        return path
    digest = hashlib.sha1(str(run_dir).encode()).hexdigest()[:12]
    return Path("/tmp") / f"voipqa-sup-{digest}.sock"


def read_line(conn: socket.socket) -> bytes:
    """One newline-terminated line (without the newline); bounded in size."""
    buf = b""
    while not buf.endswith(b"\n"):
        chunk = conn.recv(1024)
        if not chunk:
            break
        buf += chunk
        if len(buf) > _MAX_LINE:
            raise ValueError("control line too long")
    return buf.strip()


def request(run_dir: Path | str, op: str, name: str, timeout: float = 30) -> dict[str, Any]:
    """Ask the supervisor of ``run_dir`` to apply ``op`` to carrier ``name``."""
    if op not in OPS:
        raise BadInput(f"unknown carrier operation {op!r} (known: {', '.join(OPS)})")
    path = socket_path(run_dir)
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout)
        try:
            sock.connect(str(path))
            sock.sendall(json.dumps({"op": op, "name": name}).encode() + b"\n")
            answer = read_line(sock)
        except FileNotFoundError:
            raise VoipqaError(f"no lab running in {run_dir} (no control socket {path})") from None
        except ConnectionRefusedError:
            raise VoipqaError(f"the lab supervisor of {run_dir} is not answering") from None
        except (OSError, ValueError) as exc:
            raise VoipqaError(f"lab control {op} {name}: {exc}") from None
    try:
        reply = json.loads(answer)
    except ValueError:
        raise VoipqaError(f"lab control {op} {name}: unreadable answer {answer[:80]!r}") from None
    if not reply.get("ok"):
        cls = BadInput if reply.get("bad_input") else VoipqaError
        raise cls(f"lab control {op} {name}: {reply.get('error', 'failed')}")
    return reply
