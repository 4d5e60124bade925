"""Live capture with dumpcap (preferred, pcapng) or tcpdump (pcap), for every run.

``Capture(out, ports=[...])`` builds a BPF filter from the ports (or takes the user's),
starts the tool with an argv list (never a shell), waits until it really captures
(both print "Capturing on" / "listening on" to stderr), and on ``stop()`` sends SIGINT
so the file is closed cleanly, escalating to SIGTERM and SIGKILL by PID after a
timeout. The child gets PR_SET_PDEATHSIG so a parent that dies takes it along.
Anything that keeps capture from running raises :class:`CaptureUnavailable`; the caller
marks capture off and goes on.
"""

from __future__ import annotations

import glob
import os
import signal
import subprocess
import threading
import time
from collections.abc import Iterable
from pathlib import Path

from qa import tools
from qa.capture.model import CaptureUnavailable
from qa.errors import MissingTool

READY_MARKERS = ("Capturing on", "listening on")
TOOLS = ("dumpcap", "tcpdump")
#: Kernel capture buffer (both tools default to 2 MiB, too small for a burst of calls).
BUFFER_MB = 32
#: libpcap hands tcpdump a ring block at the latest after this many seconds (its -B timeout).
TCPDUMP_BLOCK_TIMEOUT = 1.2
#: Seconds to wait after dumpcap wrote its file header (see Capture._wait_ready).
DUMPCAP_GRACE = 0.1


def build_bpf(ports: Iterable[int] = (), rtp_range: tuple[int, int] | None = None) -> str:
    """A BPF filter for SIP on ``ports`` (UDP and TCP) plus an optional UDP RTP range."""
    parts: list[str] = []
    for port in ports:
        port = _port(port)
        parts += [f"udp port {port}", f"tcp port {port}"]
    if rtp_range is not None:
        low, high = (_port(p) for p in rtp_range)
        if low > high:
            raise ValueError(f"RTP port range {low}-{high} is empty")
        parts.append(f"udp portrange {low}-{high}")
    return " or ".join(parts)


def _port(port: object) -> int:
    if not isinstance(port, int) or isinstance(port, bool) or not 0 < port < 65536:
        raise ValueError(f"not a port number: {port!r}")
    return port


class Capture:
    """One live capture to ``out`` (suffix set by the tool: .pcapng for dumpcap, .pcap
    for tcpdump); the written file(s) are in ``files`` after :meth:`stop`.

    ``ring=(megabytes, count)`` keeps at most ``count`` files of about that size.
    ``tool`` forces "dumpcap" or "tcpdump". PR_SET_PDEATHSIG fires when the *thread*
    that started the capture exits: start it from a thread that outlives it.
    """

    def __init__(self, out: str | Path, *, interface: str = "lo", ports: list[int] | None = None,
                 bpf: str | None = None, ring: tuple[int, int] | None = None,
                 rtp_range: tuple[int, int] | None = None, tool: str | None = None,
                 start_timeout: float = 15.0, stop_timeout: float = 10.0) -> None:
        self.out = Path(out)
        self.interface = interface
        self.bpf = bpf if bpf is not None else build_bpf(ports or (), rtp_range)
        if ring is not None and (ring[0] < 1 or ring[1] < 2):
            raise ValueError(f"ring buffer needs size >= 1 MB and >= 2 files, got {ring}")
        self.ring = ring
        self.tool = tool
        self.start_timeout = start_timeout
        self.stop_timeout = stop_timeout
        self.files: list[Path] = []
        self.stderr_lines: list[str] = []
        self.proc: subprocess.Popen[bytes] | None = None
        self.path: Path | None = None
        self._ready = threading.Event()
        self._reader: threading.Thread | None = None
        self._started = 0.0

    # -- argv ---------------------------------------------------------------------------

    def _pick_tool(self) -> tuple[str, str]:
        names = (self.tool,) if self.tool else TOOLS
        for name in names:
            try:
                return name, tools.require_tool(name)
            except MissingTool:
                continue
        raise CaptureUnavailable(
            f"capture unavailable: {' nor '.join(names)} installed "
            "(apt-get install tshark or tcpdump); capture is off for this run")

    def argv(self, name: str, exe: str) -> list[str]:
        """The command line for ``name`` ('dumpcap' or 'tcpdump') at ``exe``."""
        if name == "dumpcap":
            self.path = self.out.with_suffix(".pcapng")
            argv = [exe, "-i", self.interface, "-w", str(self.path), "-q", "-B", str(BUFFER_MB)]
            if self.ring:
                argv += ["-b", f"filesize:{self.ring[0] * 1000}", "-b", f"files:{self.ring[1]}"]
            if self.bpf:
                argv += ["-f", self.bpf]
            return argv
        self.path = self.out.with_suffix(".pcap")
        # not --immediate-mode: with it libpcap uses a ring of snaplen-sized slots and drops
        # bursts; stop() waits for the last ring block to be handed over instead
        argv = [exe, "-i", self.interface, "-w", str(self.path), "-U", "-n", "-s", "0",
                "-B", str(BUFFER_MB * 1024)]
        if self.ring:
            argv += ["-C", str(self.ring[0]), "-W", str(self.ring[1])]
        if os.geteuid() == 0:
            argv += ["-Z", "root"]  # keep the file writable where we put it
        return argv + ([self.bpf] if self.bpf else [])

    # -- life cycle ---------------------------------------------------------------------

    def start(self) -> Capture:
        """Start capturing; returns once the tool says it captures."""
        if self.proc is not None:
            raise RuntimeError("capture already started")
        name, exe = self._pick_tool()
        self.out.parent.mkdir(parents=True, exist_ok=True)
        argv = self.argv(name, exe)
        self._started = time.time()
        try:
            self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                         stderr=subprocess.PIPE, preexec_fn=tools.die_with_parent,
                                         start_new_session=True)
        except OSError as exc:
            raise CaptureUnavailable(f"capture unavailable: cannot run {exe}: {exc}") from None
        self._reader = threading.Thread(target=self._read_stderr, args=(self.proc,),
                                        name=f"{name}-stderr", daemon=True)
        self._reader.start()
        self._wait_ready(name)
        return self

    def _read_stderr(self, proc: subprocess.Popen[bytes]) -> None:
        assert proc.stderr is not None
        for raw in proc.stderr:
            line = raw.decode("utf-8", "replace").strip()
            if len(self.stderr_lines) < 200:
                self.stderr_lines.append(line)
            if any(marker in line for marker in READY_MARKERS):
                self._ready.set()
        self._ready.set()  # EOF: the tool exited

    def _wait_ready(self, name: str) -> None:
        """Wait for the tool's ready line and, for dumpcap, for its output file.

        dumpcap prints "Capturing on" before it opens the interface; it writes the
        pcapng header only after the interface is open and filtered, so a non-empty
        file is the signal; even then packets sent in the next ~10 ms were lost on
        this machine (libpcap's TPACKET_V3 filter switch), hence ``DUMPCAP_GRACE``.
        tcpdump prints "listening on" once it captures.
        """
        assert self.proc is not None
        deadline = time.monotonic() + self.start_timeout
        ready = self._ready.wait(self.start_timeout)
        while ready and name == "dumpcap" and self.proc.poll() is None and not self._has_output():
            if time.monotonic() > deadline:
                ready = False
                break
            time.sleep(0.02)
        if ready and self.proc.poll() is None:
            if name == "dumpcap":
                time.sleep(DUMPCAP_GRACE)
            return
        if self.proc.poll() is None:
            self._terminate()
            why = f"{name} did not start capturing within {self.start_timeout:g} s"
        else:
            self._reap()
            why = f"{name} exited: {self._last_error()}"
        self.proc = None
        raise CaptureUnavailable(f"capture unavailable on {self.interface}: {why}")

    def _has_output(self) -> bool:
        for f in self._written():
            try:
                st = f.stat()
            except OSError:  # rotated away meanwhile
                continue
            # a file left by an earlier capture of the same name does not count
            if st.st_size > 0 and st.st_mtime >= self._started - 0.05:
                return True
        return False

    def _last_error(self) -> str:
        lines = [ln for ln in self.stderr_lines if ln]
        return lines[-1] if lines else "no message"

    def stop(self, settle: float = 0.3) -> list[Path]:
        """Stop (SIGINT, then SIGTERM/SIGKILL after timeouts); return the files written.

        ``settle`` seconds are left first for packets in flight to reach the file
        (for tcpdump at least ``TCPDUMP_BLOCK_TIMEOUT``: on SIGINT it drops the
        packets of the ring block the kernel has not yet handed over).
        """
        if self.proc is None:
            return self.files
        if self.proc.poll() is None:
            if self.path is not None and self.path.suffix == ".pcap":
                settle = max(settle, TCPDUMP_BLOCK_TIMEOUT)
            time.sleep(settle)
            self._signal(signal.SIGINT)
            try:
                self.proc.wait(self.stop_timeout)
            except subprocess.TimeoutExpired:
                self._terminate()
        self._reap()
        self.proc = None
        self.files = self._written()
        return self.files

    def _signal(self, sig: int) -> None:
        assert self.proc is not None
        try:
            os.kill(self.proc.pid, sig)
        except ProcessLookupError:
            pass

    def _terminate(self) -> None:
        assert self.proc is not None
        for sig in (signal.SIGTERM, signal.SIGKILL):
            self._signal(sig)
            try:
                self.proc.wait(5.0)
                return
            except subprocess.TimeoutExpired:
                continue

    def _reap(self) -> None:
        assert self.proc is not None
        self.proc.wait()
        if self._reader is not None:
            self._reader.join(5.0)
        if self.proc.stderr is not None:
            self.proc.stderr.close()

    def _written(self) -> list[Path]:
        assert self.path is not None
        if self.path.exists():
            return [self.path]
        if self.path.suffix == ".pcapng":  # dumpcap ring: NAME_00001_20260101120000.pcapng
            pattern = f"{glob.escape(self.path.stem)}_[0-9][0-9][0-9][0-9][0-9]_*.pcapng"
        else:  # tcpdump ring: NAME.pcap0, NAME.pcap1 ...
            pattern = f"{glob.escape(self.path.name)}[0-9]*"
        return sorted(p for p in self.path.parent.glob(pattern) if p.is_file())

    @property
    def running(self) -> bool:
        """True while the capture process runs."""
        return self.proc is not None and self.proc.poll() is None

    def __enter__(self) -> Capture:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
