"""The lab supervisor: ``python -m qa.lab.supervisor RUN_DIR`` (started detached by ``up``).

Reads ``RUN_DIR/lab.request.json`` (seed, plan, explicit ports, shape), prepares the run
directory (ports, certificates, SQLite DB, rendered config checked with ``kamailio -c``),
starts rtpengine (first: Kamailio's rtpengine module wants it up), Kamailio and the
carriers as children with PR_SET_PDEATHSIG(SIGTERM) (so a SIGKILLed supervisor takes them
all down), writes ``lab.json`` once everything is healthy, then serves the control socket
(``qa.lab.control``: stop/start/pause/resume a carrier) until told to stop.
SIGTERM/SIGINT: stop the children by PID (SIGCONT, SIGTERM, SIGKILL after 3 s), remove
``lab.json``, exit. A failed start writes ``lab.error`` (one line) and exits 2 (bad
input) or 1.
"""

from __future__ import annotations

import json
import os
import select
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from qa.errors import BadInput, VoipqaError
from qa.lab import config, control, rtpengine
from qa.transport.probe import sip_options
from qa.lab.seed import Seed, load_seed, shaped
from qa.lab.state import ERROR_FILE, PID_FILE, REQUEST_FILE, LabState, state_path
from qa.ports import allocate_ports, require_free
from qa.tools import die_with_parent, require_tool

STOP_GRACE_S = 3.0
CARRIER_START_S = 15.0
#: lab.json port names besides one per carrier (rtp_min/rtp_max: rtpengine's media range)
FIXED_PORTS = ("sip", "sip_tls", "sip_tls_expired", "rtpengine_ng")


def carrier_command(name: str, port: int, plan: Path, cdr: Path) -> list[str]:
    """The one place the carrier command line is built (the native mock carrier)."""
    return [sys.executable, "-m", "qa.carrier", "serve", "--plan", str(plan),
            "--listen", f"{config.HOST}:{port}", "--cdr", str(cdr), "--name", name]


def kamailio_command(exe: str, cfg: Path, run_dir: Path, seed: Seed) -> list[str]:
    """The one place the Kamailio command line is built: foreground, logging to stderr
    (KAMAILIO-NOTES pitfalls 1-2), runtime files in the run dir, the shape's memory
    (``-m`` shared, ``-M`` private only when the shape sets it: the functional lab keeps
    the command line it always had)."""
    argv = [exe, "-DD", "-E", "-f", str(cfg), "-P", str(run_dir / "kamailio.pid"), "-Y", str(run_dir),
            "-m", str(seed.shm_mb)]
    if seed.pkg_mb is not None:
        argv += ["-M", str(seed.pkg_mb)]
    return argv


def shape_settings(seed: Seed) -> dict[str, Any]:
    """What lab.json's ``settings`` records: the effective values a shape may change
    besides workers and memory, so a load report can say what the platform ran with."""
    return {
        "dispatcher_algorithm": seed.algorithm,
        "antiflood": {"window_s": seed.pike_window_s, "max_requests": seed.pike_max_requests,
                      "ban_s": seed.ban_s},
        "rtpengine": {"timeout_ms": seed.rtpengine_tout_ms, "retries": seed.rtpengine_retries,
                      "disable_s": seed.rtpengine_disable_s},
        "media_ports": seed.media_ports,
    }


def ctl_socket_path(run_dir: Path) -> Path:
    """Unix socket paths are limited to 107 bytes: long run dirs get a short /tmp path."""
    path = run_dir / "kamailio_ctl"
    if len(str(path)) <= 100:
        return path
    import hashlib
    digest = hashlib.sha1(str(run_dir).encode()).hexdigest()[:12]
    return Path("/tmp") / f"voipqa-ctl-{digest}.sock"



def _kill_group(pgid: int) -> None:
    """SIGKILL the process group a child leads (it was started in its own session)."""
    try:
        os.killpg(pgid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass

class Supervisor:
    def __init__(self, run_dir: Path) -> None:
        self.run_dir = run_dir
        self.children: dict[str, subprocess.Popen[bytes]] = {}
        self.stopping = False
        self.state: LabState | None = None
        self.carrier_argv: dict[str, list[str]] = {}
        self.control_sock: socket.socket | None = None

    # ----- process control
    def spawn(self, name: str, argv: list[str], log: Path, cwd: Path | None = None) -> subprocess.Popen[bytes]:
        with open(log, "ab") as fh:
            # its own process group: Kamailio's workers are its children, not ours, and one
            # killpg() ends them all (a main killed mid-shutdown would leave them orphaned)
            proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=fh, stderr=subprocess.STDOUT,
                                    preexec_fn=die_with_parent, cwd=cwd, close_fds=True, start_new_session=True)
        self.children[name] = proc
        return proc

    def stop_children(self) -> None:
        # carriers first, then Kamailio (it would otherwise probe dead carriers in vain),
        # rtpengine last; a paused (SIGSTOPped) carrier must be continued to see SIGTERM
        tail = ("kamailio", "rtpengine")
        order = [n for n in self.children if n not in tail] + [n for n in tail if n in self.children]
        for name in order:
            proc = self.children[name]
            if proc.poll() is None:
                try:
                    proc.send_signal(signal.SIGCONT)
                    proc.send_signal(signal.SIGTERM)
                except ProcessLookupError:
                    pass
        deadline = time.monotonic() + STOP_GRACE_S
        for name in order:
            proc = self.children[name]
            try:
                proc.wait(timeout=max(0.05, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                _kill_group(proc.pid)
                proc.wait(timeout=5)
            _kill_group(proc.pid)  # whatever of its group outlived it (a worker stuck in exit)

    def owner_pid(self) -> int | None:
        """The process this lab lives for (``voipqa run`` starting a lab for one run), if any."""
        try:
            return json.loads((self.run_dir / REQUEST_FILE).read_text()).get("owner_pid")
        except (OSError, ValueError):
            return None

    def _on_signal(self, signum: int, _frame: object) -> None:
        self.stopping = True
        raise KeyboardInterrupt

    # ----- start
    def start(self) -> LabState:
        run_dir = self.run_dir
        req = json.loads((run_dir / REQUEST_FILE).read_text())
        seed_path, plan_path = Path(req["seed"]), Path(req["plan"])
        seed: Seed = shaped(load_seed(seed_path), req.get("shape", "functional"))
        kamailio = require_tool("kamailio")
        require_tool("openssl")

        explicit: dict[str, int] = {k: int(v) for k, v in (req.get("ports") or {}).items()}
        names = list(FIXED_PORTS) + [c.name for c in seed.carriers]
        unknown = set(explicit) - set(names)
        if unknown:
            raise BadInput(f"lab ports: unknown name(s) {', '.join(sorted(unknown))} (known: {', '.join(names)})")
        for name, port in explicit.items():
            require_free(port, config.HOST, what=f"lab port '{name}'")
        wanted = [n for n in names if n not in explicit]
        fresh = allocate_ports(len(wanted), config.HOST, exclude=set(explicit.values()))
        ports = dict(explicit) | dict(zip(wanted, fresh))
        ports["rtp_min"], ports["rtp_max"] = rtpengine.allocate_media_range(config.HOST, seed.media_ports)

        ctl = ctl_socket_path(run_dir)
        ctl.unlink(missing_ok=True)
        ca = config.make_certs(run_dir)
        db = config.db_path(run_dir)
        config.create_db(db, seed)
        cfg = config.write_run_files(run_dir, seed, ports, ctl)
        config.check_config(cfg)

        logs = {"supervisor": str(run_dir / "supervisor.log"), "kamailio": str(run_dir / "kamailio.log"),
                "rtpengine": str(run_dir / "rtpengine.log")}
        timeout = float(req.get("timeout", 20))
        self.start_rtpengine(seed, ports, Path(logs["rtpengine"]), timeout)
        self.spawn("kamailio", kamailio_command(kamailio, cfg, run_dir, seed), Path(logs["kamailio"]))
        carrier_cdr: dict[str, str] = {}
        for c in seed.carriers:
            cdr = run_dir / f"{c.name}.jsonl"
            log = run_dir / f"{c.name}.log"
            carrier_cdr[c.name] = str(cdr)
            logs[c.name] = str(log)
            self.carrier_argv[c.name] = carrier_command(c.name, ports[c.name], plan_path, cdr)
            self.spawn(c.name, self.carrier_argv[c.name], log, cwd=_REPO_ROOT)

        self.wait_healthy(ports, logs, seed, timeout)
        self.control_sock = self.open_control_socket()
        return LabState(
            backend="native", run_dir=str(run_dir), supervisor_pid=os.getpid(), started=time.time(),
            host=config.HOST, domain=seed.domain, ports=ports,
            processes={n: p.pid for n, p in self.children.items()}, cdr_db=str(db),
            carrier_cdr=carrier_cdr, ca_cert=str(ca), tls_server_name=config.TLS_SERVER_NAME,
            ctl_socket=str(ctl), seed=str(seed_path), plan=str(plan_path), logs=logs, config=str(cfg),
            shape=seed.shape, workers=seed.workers, shm_mb=seed.shm_mb, pkg_mb=seed.pkg_mb,
            load_accounts=list(seed.load_users), settings=shape_settings(seed), accounting=seed.accounting,
        )

    def start_rtpengine(self, seed: Seed, ports: dict[str, int], log: Path, timeout: float) -> None:
        """rtpengine first, answering ng pings, so Kamailio's rtpengine module finds it."""
        exe = require_tool("rtpengine")
        argv = rtpengine.command(exe, config.HOST, ports["rtpengine_ng"], ports["rtp_min"], ports["rtp_max"],
                                 sip_port=ports["sip"], timeout_s=seed.media_timeout_s,
                                 pidfile=self.run_dir / "rtpengine.pid")
        proc = self.spawn("rtpengine", argv, log)
        deadline = time.monotonic() + timeout
        while not rtpengine.ping(config.HOST, ports["rtpengine_ng"], 0.2):
            if proc.poll() is not None:
                raise VoipqaError(f"rtpengine exited with code {proc.returncode} during start: {_tail(log)}")
            if time.monotonic() > deadline:
                raise VoipqaError(f"rtpengine not answering on its ng port after {timeout:g} s: {_tail(log)}")
            time.sleep(0.1)

    def wait_healthy(self, ports: dict[str, int], logs: dict[str, str], seed: Seed, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        pending = {"kamailio"} | {c.name for c in seed.carriers}
        while pending:
            for name, proc in self.children.items():
                if proc.poll() is not None:
                    raise VoipqaError(f"{name} exited with code {proc.returncode} during start: "
                                      f"{_tail(Path(logs[name]))}")
            for name in sorted(pending):
                if name == "kamailio":
                    try:
                        ok = sip_options(config.HOST, ports["sip"], "udp", 0.3)[0] == 200
                    except OSError:
                        ok = False
                else:
                    ok = "listening" in Path(logs[name]).read_text(errors="replace")
                if ok:
                    pending.discard(name)
            if not pending:
                break
            if time.monotonic() > deadline:
                raise VoipqaError(f"lab not healthy after {timeout:g} s (waiting for {', '.join(sorted(pending))})")
            time.sleep(0.05)

    def run(self) -> int:
        signal.signal(signal.SIGTERM, self._on_signal)
        signal.signal(signal.SIGINT, self._on_signal)
        signal.signal(signal.SIGHUP, self._on_signal)
        code = 0
        try:
            try:
                state = self.start()
            except (VoipqaError, OSError, subprocess.SubprocessError, ValueError, KeyError) as exc:
                code = exc.exit_code if isinstance(exc, VoipqaError) else 1
                (self.run_dir / ERROR_FILE).write_text(json.dumps({"exit_code": code, "message": str(exc)}))
                _log(f"start failed: {exc}")
                return code
            self.state = state
            state.save(self.run_dir)
            _log(f"lab up: ports {state.ports}, pids {state.processes}")
            self.watch()
        except KeyboardInterrupt:
            _log("stopping")
        finally:
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
            signal.signal(signal.SIGINT, signal.SIG_IGN)
            self.close_control_socket()
            self.stop_children()
            state_path(self.run_dir).unlink(missing_ok=True)
            (self.run_dir / PID_FILE).unlink(missing_ok=True)
            _log("stopped")
        return code

    def watch(self) -> None:
        """Log children that exit (unless stopped on purpose), serve control requests,
        and return when the owner process (if any) is gone."""
        reported: set[int] = set()
        owner = self.owner_pid()
        while True:
            for name, proc in self.children.items():
                if proc.poll() is not None and proc.pid not in reported:
                    reported.add(proc.pid)
                    if self.state is None or self.state.controlled.get(name) != "stopped":
                        _log(f"{name} (pid {proc.pid}) exited with code {proc.returncode}")
            if owner and not _pid_alive(owner):
                _log(f"owner process {owner} is gone: stopping the lab")
                return
            assert self.control_sock is not None
            ready, _, _ = select.select([self.control_sock], [], [], 0.5)
            if ready:
                self.serve_one()

    # ----- control socket (qa.lab.control)
    def open_control_socket(self) -> socket.socket:
        path = control.socket_path(self.run_dir)
        path.unlink(missing_ok=True)
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.bind(str(path))
        os.chmod(path, 0o600)
        sock.listen(8)
        return sock

    def close_control_socket(self) -> None:
        if self.control_sock is not None:
            self.control_sock.close()
            self.control_sock = None
        control.socket_path(self.run_dir).unlink(missing_ok=True)

    def serve_one(self) -> None:
        """Answer one control request; a client that misbehaves costs at most 5 s."""
        assert self.control_sock is not None
        conn, _ = self.control_sock.accept()
        with conn:
            conn.settimeout(5)
            try:
                req = json.loads(control.read_line(conn))
                reply = self.apply(str(req.get("op")), str(req.get("name")))
            except BadInput as exc:
                reply = {"ok": False, "error": str(exc), "bad_input": True}
            except (VoipqaError, OSError, ValueError, AttributeError, subprocess.SubprocessError) as exc:
                reply = {"ok": False, "error": str(exc)}
            try:
                conn.sendall(json.dumps(reply).encode() + b"\n")
            except OSError:
                pass

    def apply(self, op: str, name: str) -> dict[str, Any]:
        """stop | start | pause | resume carrier ``name``; lab.json follows."""
        assert self.state is not None
        if name not in self.carrier_argv:
            raise BadInput(f"no carrier {name!r} in this lab (known: {', '.join(self.carrier_argv)})")
        if op not in control.OPS:
            raise BadInput(f"unknown operation {op!r} (known: {', '.join(control.OPS)})")
        proc = self.children[name]
        running = proc.poll() is None
        if op == "stop" and running:
            self._terminate(proc)
        elif op == "start" and not running:
            proc = self.restart_carrier(name)
        elif op in ("pause", "resume") and not running:
            raise VoipqaError(f"{name} is stopped: start it first")
        elif op in ("pause", "resume", "start"):
            proc.send_signal(signal.SIGSTOP if op == "pause" else signal.SIGCONT)
        held = {"stop": "stopped", "pause": "paused"}.get(op)
        if held:
            self.state.controlled[name] = held
        else:
            self.state.controlled.pop(name, None)
        self.state.processes[name] = proc.pid
        self.state.save(self.run_dir)
        _log(f"control: {op} {name} -> pid {proc.pid}")
        return {"ok": True, "pid": proc.pid, "state": held or "running"}

    @staticmethod
    def _terminate(proc: subprocess.Popen[bytes]) -> None:
        proc.send_signal(signal.SIGCONT)
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=STOP_GRACE_S)
        except subprocess.TimeoutExpired:
            _kill_group(proc.pid)
            proc.wait(timeout=5)
        _kill_group(proc.pid)

    def restart_carrier(self, name: str) -> subprocess.Popen[bytes]:
        """Same argv (port, plan, CDR file appended to) as at start; back when it listens."""
        assert self.state is not None
        log = Path(self.state.logs[name])
        offset = log.stat().st_size if log.exists() else 0
        proc = self.spawn(name, self.carrier_argv[name], log, cwd=_REPO_ROOT)
        deadline = time.monotonic() + CARRIER_START_S
        while "listening" not in _read_from(log, offset):
            if proc.poll() is not None:
                raise VoipqaError(f"{name} exited with code {proc.returncode} on restart: {_tail(log)}")
            if time.monotonic() > deadline:
                raise VoipqaError(f"{name} not listening {CARRIER_START_S:g} s after restart")
            time.sleep(0.05)
        return proc


_REPO_ROOT = Path(__file__).resolve().parents[2]


def _read_from(path: Path, offset: int) -> str:
    try:
        with open(path, "rb") as fh:
            fh.seek(offset)
            return fh.read().decode(errors="replace")
    except OSError:
        return ""


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _tail(path: Path, lines: int = 5) -> str:
    try:
        text = path.read_text(errors="replace").strip().splitlines()
    except OSError:
        return ""
    return " | ".join(text[-lines:])


def _log(msg: str) -> None:
    print(f"{time.strftime('%H:%M:%S')} supervisor[{os.getpid()}]: {msg}", flush=True)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m qa.lab.supervisor RUN_DIR", file=sys.stderr)
        return 2
    return Supervisor(Path(args[0]).resolve()).run()


if __name__ == "__main__":
    sys.exit(main())
