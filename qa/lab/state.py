"""The running lab, as ``RUN_DIR/lab.json`` (written by the supervisor once healthy)."""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

STATE_FILE = "lab.json"
REQUEST_FILE = "lab.request.json"   # what `up` asks the supervisor for
ERROR_FILE = "lab.error"            # {"exit_code", "message"} of a failed start
PID_FILE = "supervisor.pid"


@dataclass
class LabState:
    backend: str
    run_dir: str
    supervisor_pid: int
    started: float
    host: str
    domain: str
    ports: dict[str, int]                 # sip (UDP+TCP), sip_tls, sip_tls_expired, rtpengine_ng,
                                          # rtp_min/rtp_max (media range), one per carrier name
    processes: dict[str, int]             # name -> pid (rtpengine, kamailio, carrier-a, ...)
    cdr_db: str                           # SQLite DB with the voipqa_cdr view
    carrier_cdr: dict[str, str]           # carrier name -> JSONL path
    ca_cert: str
    tls_server_name: str
    ctl_socket: str                       # kamcmd -s unix:<ctl_socket>
    seed: str
    plan: str
    logs: dict[str, str]                  # name -> log path
    config: str = ""                      # the rendered kamailio.cfg
    controlled: dict[str, str] = field(default_factory=dict)  # carrier -> "stopped" | "paused"
    # the shape (qa.lab.seed.SHAPES) and what it made effective; the defaults are what a
    # lab.json written before shapes existed describes (the functional lab)
    shape: str = "functional"
    workers: int = 1                      # Kamailio children = tcp_children
    shm_mb: int = 64                      # Kamailio -m
    pkg_mb: int | None = None             # Kamailio -M (None: its built-in 8 MB)
    load_accounts: list[str] = field(default_factory=list)   # users of the seed's load_shape.accounts
    settings: dict[str, Any] = field(default_factory=dict)   # dispatcher_algorithm, antiflood,
                                                              # rtpengine, media_ports (effective values)
    # how Kamailio writes accounting rows (qa.lab.seed.ACCOUNTING_MODES): "queued" (one
    # writer) or "direct" (every process; loses rows under load). A lab.json written before
    # this existed describes a direct lab.
    accounting: str = "direct"

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, sort_keys=True)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "LabState":
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})

    def save(self, run_dir: Path | None = None) -> Path:
        """Atomic write (tmp + rename): a reader never sees half a file."""
        path = Path(run_dir or self.run_dir) / STATE_FILE
        tmp = path.with_suffix(".json.tmp")
        tmp.write_text(self.to_json() + "\n", encoding="utf-8")
        os.replace(tmp, path)
        return path


def state_path(run_dir: Path | str) -> Path:
    return Path(run_dir) / STATE_FILE


def load_state(run_dir: Path | str) -> LabState | None:
    """The recorded lab of ``run_dir``, or None (no file, or unreadable)."""
    try:
        data = json.loads(state_path(run_dir).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict):
        return None
    try:
        return LabState.from_dict(data)
    except TypeError:
        return None
