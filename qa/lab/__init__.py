"""The native lab backend (DESIGN §2, §5): Kamailio, rtpengine and the carriers on 127.0.0.1.

``up`` starts a detached supervisor (``python -m qa.lab.supervisor RUN_DIR``, own
session) and waits until it has written ``RUN_DIR/lab.json`` (everything healthy);
``down`` SIGTERMs the supervisor, which stops its children by PID, and falls back to
killing the recorded PIDs itself; ``status`` reports every process with its ports and
health. ``up(..., shape="load")`` starts the load shape (the seed's ``load_shape``:
more Kamailio workers and memory, raised anti-flood, round-robin carriers, the load
accounts) for stress/load/soak runs; ``functional`` (the default) is the catalogue's lab.
Helpers for tests: ``query_cdrs``, ``set_balance``, ``kamcmd``; for failover
cases ``stop_carrier``/``start_carrier``/``pause_carrier``/``resume_carrier`` (through
the supervisor, which owns the carriers) and ``dispatcher_state``.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from qa.errors import BadInput, VoipqaError
from qa.transport.probe import sip_options
from qa.lab import control, rtpengine
from qa.lab.seed import SHAPES, Seed, check_shape
from qa.lab.state import ERROR_FILE, PID_FILE, REQUEST_FILE, LabState, load_state, state_path
from qa.paths import DEFAULT_PLAN, DEFAULT_SEED
from qa.ports import require_free
from qa.tools import require_tool

__all__ = [
    "SHAPES", "LabState", "ProcessStatus", "default_run_dir", "dispatcher_state", "down", "effective_seed", "kamcmd",
    "load_state",
    "pause_carrier", "query_cdrs", "resume_carrier", "set_balance", "start_carrier", "status",
    "stop_carrier", "up",
]

_PORT_NAMES_FIXED = ("sip", "sip_tls", "sip_tls_expired")
_OUR_PROGRAMS = ("kamailio", "carrier", "rtpengine")


@dataclass
class ProcessStatus:
    name: str
    pid: int | None
    alive: bool
    ports: dict[str, int] = field(default_factory=dict)
    health: str = ""
    details: dict[str, Any] = field(default_factory=dict)   # kamailio: shape, workers, shm_mb, pkg_mb,
                                                            # accounting


def default_run_dir() -> Path:
    """``$VOIPQA_LAB_DIR``, else ``./.voipqa/lab``."""
    env = os.environ.get("VOIPQA_LAB_DIR")
    return Path(env) if env else Path.cwd() / ".voipqa" / "lab"


# ----- process helpers

def _alive(pid: int | None) -> bool:
    """True for a running (non-zombie) process; reaps it if it is our own dead child."""
    if not pid or pid <= 0:
        return False
    try:
        done, _ = os.waitpid(pid, os.WNOHANG)
        if done == pid:
            return False
    except ChildProcessError:
        pass
    except OSError:
        pass
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            stat = fh.read()
    except OSError:
        return False
    state = stat.rsplit(b")", 1)[-1].split()[0:1]
    return state not in ([b"Z"], [b"X"])


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def _read_pid(path: Path) -> int | None:
    try:
        return int(path.read_text().strip())
    except (OSError, ValueError):
        return None


def _wait_gone(pids: list[int], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not any(_alive(p) for p in pids):
            return True
        time.sleep(0.05)
    return not any(_alive(p) for p in pids)


def _tail(path: Path | str, lines: int = 8) -> str:
    try:
        text = Path(path).read_text(errors="replace").strip().splitlines()
    except OSError:
        return ""
    return "\n".join(text[-lines:])


# ----- up / down / status

def up(run_dir: Path, *, seed: Path = DEFAULT_SEED, plan: Path = DEFAULT_PLAN, timeout: float = 20,
       ports: dict[str, int] | None = None, owner_pid: int | None = None,
       shape: str = "functional") -> tuple[LabState, bool]:
    """Start the lab in ``run_dir`` (or report the one running there: ``(state, True)``).

    ``shape``: ``functional`` (the catalogue's lab) or ``load`` (the seed's ``load_shape``).
    A lab of the other shape already running there is BadInput: silently handing a load
    run a one-worker lab (or the catalogue a round-robin one) would make its results lie.
    With ``owner_pid`` the lab lives only as long as that process: a lab started for one
    run stops even when the run is SIGKILLed.
    """
    check_shape(shape)
    run_dir = Path(run_dir).resolve()
    existing = load_state(run_dir)
    if existing is not None and _alive(existing.supervisor_pid):
        _require_shape(run_dir, existing.shape, shape)
        return existing, True
    sup_pid = _read_pid(run_dir / PID_FILE)
    if sup_pid and _alive(sup_pid) and "qa.lab.supervisor" in _cmdline(sup_pid):
        # another `up` is starting this lab: wait for it
        _require_shape(run_dir, _requested_shape(run_dir), shape)
        return _wait_for_state(run_dir, sup_pid, timeout), True
    if existing is not None:
        down(run_dir)  # stale: its supervisor died; make sure nothing is left

    require_tool("kamailio")
    require_tool("openssl")
    seed, plan = Path(seed).resolve(), Path(plan).resolve()
    from qa.carrier.plan import load_plan
    from qa.lab.seed import load_seed, shaped
    # a bad seed or plan (or a seed without the load_shape asked for) is the user's to
    # fix: report it here, synchronously (exit 2)
    shaped(load_seed(seed), shape)
    load_plan(plan)
    for name, port in (ports or {}).items():
        if not isinstance(port, int) or isinstance(port, bool) or not 0 < port < 65536:
            raise BadInput(f"lab port '{name}': not a port number: {port!r}")
        require_free(port, "127.0.0.1", what=f"lab port '{name}'")

    run_dir.mkdir(parents=True, exist_ok=True)
    for stale in (ERROR_FILE, "lab.json.tmp"):
        (run_dir / stale).unlink(missing_ok=True)
    (run_dir / REQUEST_FILE).write_text(json.dumps(
        {"seed": str(seed), "plan": str(plan), "ports": ports or {}, "timeout": timeout,
         "owner_pid": owner_pid, "shape": shape}))
    repo_root = Path(__file__).resolve().parents[2]
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(repo_root), env.get("PYTHONPATH", "")) if p)
    with open(run_dir / "supervisor.log", "ab") as log:
        proc = subprocess.Popen([sys.executable, "-m", "qa.lab.supervisor", str(run_dir)],
                                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True, close_fds=True, cwd=repo_root, env=env)
    (run_dir / PID_FILE).write_text(f"{proc.pid}\n")
    try:
        return _wait_for_state(run_dir, proc.pid, timeout + 5), False
    except KeyboardInterrupt:
        down(run_dir)
        raise


def effective_seed(state: LabState) -> Seed:
    """The seed as this lab runs it (its shape applied): in the load shape its accounts
    include the load accounts (``state.load_accounts`` names them), with their passwords."""
    from qa.lab.seed import load_seed, shaped

    return shaped(load_seed(Path(state.seed)), state.shape)


def _require_shape(run_dir: Path, running: str, wanted: str) -> None:
    if running != wanted:
        raise BadInput(f"a {running} lab is running in {run_dir}; 'voipqa lab down' first")


def _requested_shape(run_dir: Path) -> str:
    """The shape a lab still starting was asked for (its request file)."""
    try:
        return str(json.loads((run_dir / REQUEST_FILE).read_text()).get("shape", "functional"))
    except (OSError, ValueError, AttributeError):
        return "functional"


def _wait_for_state(run_dir: Path, sup_pid: int, timeout: float) -> LabState:
    deadline = time.monotonic() + timeout
    while True:
        state = load_state(run_dir)
        if state is not None and state.supervisor_pid == sup_pid:
            return state
        if not _alive(sup_pid):
            try:
                err = json.loads((run_dir / ERROR_FILE).read_text())
            except (OSError, ValueError):
                err = {"exit_code": 1, "message": "lab supervisor exited during start: "
                       + _tail(run_dir / "supervisor.log", 5)}
            if err.get("exit_code") == 2:
                raise BadInput(err["message"])
            raise VoipqaError(f"{err['message']}\n{_tail(run_dir / 'kamailio.log', 5)}".strip())
        if time.monotonic() > deadline:
            down(run_dir)
            raise VoipqaError(f"lab did not become healthy within {timeout:g} s; last log lines:\n"
                              f"{_tail(run_dir / 'kamailio.log')}\n{_tail(run_dir / 'supervisor.log')}")
        time.sleep(0.05)


def down(run_dir: Path, timeout: float = 10) -> bool:
    """Stop the lab of ``run_dir``; True when something was running."""
    run_dir = Path(run_dir).resolve()
    state = load_state(run_dir)
    sup = state.supervisor_pid if state else _read_pid(run_dir / PID_FILE)
    did = False
    if sup and _alive(sup) and "qa.lab.supervisor" in _cmdline(sup):
        did = True
        try:
            os.kill(sup, signal.SIGTERM)
        except ProcessLookupError:
            pass
        if not _wait_gone([sup], timeout):
            os.kill(sup, signal.SIGKILL)
            _wait_gone([sup], 2)
    # fallback: the recorded children, if the supervisor could not stop them
    leftovers = []
    if state is not None:
        for name, pid in state.processes.items():
            cmd = _cmdline(pid)
            if _alive(pid) and any(prog in cmd for prog in _OUR_PROGRAMS):
                leftovers.append(pid)
    for prog in ("kamailio", "rtpengine"):
        pid = _read_pid(run_dir / f"{prog}.pid")
        if pid and _alive(pid) and prog in _cmdline(pid) and str(run_dir) in _cmdline(pid) and pid not in leftovers:
            leftovers.append(pid)
    if leftovers:
        did = True
        for pid in leftovers:
            try:
                os.kill(pid, signal.SIGCONT)  # a paused carrier would not see SIGTERM
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        _wait_gone(leftovers, 3)
        for pid in leftovers:  # each leads its own process group (Kamailio's workers are in it)
            try:
                os.killpg(pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        _wait_gone(leftovers, 2)
    state_path(run_dir).unlink(missing_ok=True)
    (run_dir / PID_FILE).unlink(missing_ok=True)
    control.socket_path(run_dir).unlink(missing_ok=True)
    return did


def status(run_dir: Path) -> list[ProcessStatus]:
    """Every process of the lab with its ports and health (empty when no lab is recorded)."""
    state = load_state(run_dir)
    if state is None:
        return []
    out = [ProcessStatus("supervisor", state.supervisor_pid, _alive(state.supervisor_pid), {}, "")]
    kpid = state.processes.get("kamailio")
    k_alive = _alive(kpid)
    health = "down"
    if k_alive:
        parts = []
        for tr, port in (("udp", state.ports["sip"]), ("tcp", state.ports["sip"]), ("tls", state.ports["sip_tls"])):
            try:
                code, _ = sip_options(state.host, port, tr, 1.0, cafile=state.ca_cert,
                                      server_name=state.tls_server_name)
                parts.append(f"{tr} {code}")
            except OSError:
                parts.append(f"{tr} no answer")
        health = "OPTIONS " + ", ".join(parts)
    out.append(ProcessStatus("kamailio", kpid, k_alive,
                             {k: v for k, v in state.ports.items() if k in _PORT_NAMES_FIXED}, health,
                             {"shape": state.shape, "workers": state.workers, "shm_mb": state.shm_mb,
                              "pkg_mb": state.pkg_mb, "accounting": state.accounting}))
    out.append(_rtpengine_status(state))
    flags: dict[str, str] = {}
    if k_alive:
        try:
            flags = _dispatcher_flags(state)
        except VoipqaError:
            flags = {}
    for name, pid in state.processes.items():
        if name in ("kamailio", "rtpengine"):
            continue
        port = state.ports.get(name)
        f = flags.get(f"sip:{state.host}:{port}")
        if f is None:
            h = "unknown to dispatcher" if k_alive else "platform down"
        else:
            h = ("active" if f.startswith("A") else "inactive") + f" in dispatcher ({f})"
        held = state.controlled.get(name)
        if held:
            h = f"{held}; {h}"
        out.append(ProcessStatus(name, pid, _alive(pid), {"sip": port} if port else {}, h))
    return out


def _rtpengine_status(state: LabState) -> ProcessStatus:
    pid = state.processes.get("rtpengine")
    alive = _alive(pid)
    ng = state.ports.get("rtpengine_ng")
    ports = {k: state.ports[k] for k in ("rtpengine_ng", "rtp_min", "rtp_max") if k in state.ports}
    health = "down"
    if alive and ng:
        health = "ng ping ok" if rtpengine.ping(state.host, ng, 1.0) else "ng ping: no answer"
    return ProcessStatus("rtpengine", pid, alive, ports, health)


# ----- helpers

def kamcmd(state: LabState, *args: str, timeout: float = 10) -> str:
    """Run ``kamcmd -s unix:CTL ARGS`` against the lab's Kamailio; its stdout."""
    exe = require_tool("kamcmd")
    proc = subprocess.run([exe, "-s", f"unix:{state.ctl_socket}", *args], capture_output=True,
                          text=True, timeout=timeout)
    if proc.returncode != 0:
        raise VoipqaError(f"kamcmd {' '.join(args)}: {(proc.stderr or proc.stdout).strip()}")
    return proc.stdout


# ----- failover control: the carriers are the supervisor's children, so it applies these

def _run_dir_of(lab: Path | str | LabState) -> Path:
    return Path(lab.run_dir) if isinstance(lab, LabState) else Path(lab)


def stop_carrier(run_dir: Path | str | LabState, name: str) -> None:
    """Stop carrier ``name`` (SIGTERM; its port goes quiet: a "carrier down" case)."""
    control.request(_run_dir_of(run_dir), "stop", name)


def start_carrier(run_dir: Path | str | LabState, name: str) -> int:
    """Start a stopped carrier again on the same port, appending to the same CDR file;
    returns its new pid (also in lab.json). Returns once it listens."""
    return int(control.request(_run_dir_of(run_dir), "start", name)["pid"])


def pause_carrier(run_dir: Path | str | LabState, name: str) -> None:
    """SIGSTOP carrier ``name``: it keeps its port but answers nothing (a blackhole)."""
    control.request(_run_dir_of(run_dir), "pause", name)


def resume_carrier(run_dir: Path | str | LabState, name: str) -> None:
    """SIGCONT a paused carrier; it answers again (and the probes re-activate it)."""
    control.request(_run_dir_of(run_dir), "resume", name)


def dispatcher_state(run_dir: Path | str | LabState) -> dict[str, str]:
    """Kamailio's dispatcher flags per carrier name, e.g. ``{"carrier-c": "AP",
    "carrier-d": "IP"}`` (A active, I inactive, D disabled, P probing)."""
    lab = run_dir if isinstance(run_dir, LabState) else load_state(run_dir)
    if lab is None:
        raise VoipqaError(f"no lab is running in {run_dir}")
    by_uri = _dispatcher_flags(lab)
    out: dict[str, str] = {}
    for name in lab.carrier_cdr:
        flags = by_uri.get(f"sip:{lab.host}:{lab.ports.get(name)}")
        if flags is not None:
            out[name] = flags
    return out


def _dispatcher_flags(state: LabState) -> dict[str, str]:
    out: dict[str, str] = {}
    uri = None
    for line in kamcmd(state, "dispatcher.list", timeout=3).splitlines():
        line = line.strip()
        if line.startswith("URI:"):
            uri = line.split(":", 1)[1].strip()
        elif line.startswith("FLAGS:") and uri:
            out[uri] = line.split(":", 1)[1].strip()
            uri = None
    return out


def _connect(state: LabState, readonly: bool = True) -> sqlite3.Connection:
    if readonly:
        conn = sqlite3.connect(f"file:{state.cdr_db}?mode=ro", uri=True, timeout=10)
    else:
        conn = sqlite3.connect(state.cdr_db, timeout=10)
    conn.row_factory = sqlite3.Row
    return conn


def query_cdrs(state: LabState, call_id: str | None = None) -> list[dict[str, Any]]:
    """Rows of the ``voipqa_cdr`` view (all, or those of one Call-ID), oldest first."""
    conn = _connect(state)
    try:
        if call_id is None:
            cur = conn.execute("SELECT * FROM voipqa_cdr ORDER BY start_time")
        else:
            cur = conn.execute("SELECT * FROM voipqa_cdr WHERE call_id = ? ORDER BY start_time", (call_id,))
        return [dict(r) for r in cur.fetchall()]
    finally:
        conn.close()


def set_balance(state: LabState, account: str, value: float) -> None:
    """Change an account's balance; Kamailio reads it live on the next INVITE."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise BadInput(f"balance for {account}: not a number: {value!r}")
    conn = _connect(state, readonly=False)
    try:
        with conn:
            cur = conn.execute("UPDATE voipqa_account SET balance = ? WHERE account = ?", (float(value), account))
        if cur.rowcount != 1:
            raise BadInput(f"no such account in the lab: {account!r}")
    finally:
        conn.close()
